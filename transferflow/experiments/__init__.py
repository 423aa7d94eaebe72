"""Sweeps: many runs over domain pairs, label budgets, strategies and seeds."""
