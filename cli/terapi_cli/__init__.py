"""The terapi command."""
