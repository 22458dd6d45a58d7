"""Terapi service."""
