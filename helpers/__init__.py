"""Helpers for the transfer-learning series."""
