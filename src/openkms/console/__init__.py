"""The web console (F9): a front door that serves the guide's flows in a browser, in Chinese and English.

It authenticates a person (password sign-in, a server-side session, a CSRF token per session), then
runs every action through the same action table and the same runner as the RPC API (`api/actions`,
`service/runner.py`), with door `console`: the same authorization, validation, error codes and audit.
It never reads or writes the database itself.
"""
