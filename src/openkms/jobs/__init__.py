"""Background jobs of the server process: key rotation and scheduled deletion (later: material expiry).

Each job is a function of the services (and so of their clock): it finds what is due and calls the
service layer for each key as a system principal of the key's account, so policy applies; each step
becomes an audit record. `scheduler.JobScheduler` runs them in one process per database.
"""
