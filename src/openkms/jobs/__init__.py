"""Background jobs of the server process: key rotation and scheduled deletion (later: material expiry).

Each job (`steps.Job`) finds what is due and, one key at a time, calls the
service layer for each key as a system principal of the key's account, so policy applies; each step
becomes an audit record. `scheduler.JobScheduler` runs them in one process per database.
"""
