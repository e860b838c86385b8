"""The `openkms` command line (Typer + Rich): serve, unseal, migrate, audit verify."""
