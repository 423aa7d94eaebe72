"""Scoring candidates on the target test set and choosing which one is promoted."""
