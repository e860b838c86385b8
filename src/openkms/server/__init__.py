"""The composition root: builds the object graph once, above every front door.

`server/runtime.py` builds settings -> keystore -> database -> services (with their providers) ->
audit sink -> runner for the server, every CLI command that touches state, the jobs and the tests;
`server/app.py` is the ASGI application that routes to the front doors (`api/` today). No other
module wires services by hand.
"""
