"""Node-local state shared by every worker process of one server: replay nonces, change generation."""
