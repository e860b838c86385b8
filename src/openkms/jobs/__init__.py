"""Background jobs of the server process: key rotation and scheduled deletion (later: material expiry).

Each job (`steps.Job`) finds what is due and calls the service layer for one key at a time, as a
system principal of the key's account, so policy applies; each step becomes an audit record, appended
before the next step. `scheduler.JobScheduler` runs them in one process per database.
"""
