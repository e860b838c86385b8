"""OpenKMS."""
