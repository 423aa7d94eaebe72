"""Prefect tasks: thin wrappers that call :mod:`transferflow` stage functions, pass references."""
