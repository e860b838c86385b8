"""Test support: a live server in a subprocess, and one calling surface over the official SDKs."""
