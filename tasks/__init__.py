"""Prefect tasks: thin wrappers that call :mod:`transferflow` stage functions and pass references."""
