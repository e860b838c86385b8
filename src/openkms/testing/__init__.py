"""Fakes shipped with the code, for our tests and for plugin authors: keyring stores, audit sinks."""
