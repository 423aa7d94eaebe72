"""Prefect flows (and the CLI that starts them)."""
