"""RAM identities as the service layer hands them out: users and roles of a main account.

Pure values; the repository stores them and the adapters render them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["Role", "User"]


@dataclass(frozen=True, slots=True)
class User:
    account_id: str
    user_name: str
    user_id: str
    display_name: str
    comments: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Role:
    account_id: str
    role_name: str
    role_id: str
    description: str
    assume_role_policy: str
    max_session_duration: int
    created_at: datetime
    updated_at: datetime
