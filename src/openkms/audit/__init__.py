"""The audit log: one record per request, written before the answer leaves (fail closed).

Owns `AuditEvent`, the sinks that write events and the verifier of the hash-chained files. Never
contains plaintext, data keys or secrets: an event names who did what to which key, and how it ended.
"""

from openkms.audit.event import AuditEvent, audit_time
from openkms.audit.sink import GENESIS_ACTION, AuditSink, JsonlAuditSink
from openkms.audit.verify import VerifyReport, verify_directory, verify_file

__all__ = [
    "GENESIS_ACTION",
    "AuditEvent",
    "AuditSink",
    "JsonlAuditSink",
    "VerifyReport",
    "audit_time",
    "verify_directory",
    "verify_file",
]
