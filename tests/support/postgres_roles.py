"""Scratch PostgreSQL roles for the rotation tests, and a check that a role's stored SCRAM verifier
belongs to a password.

The development PostgreSQL trusts every connection from 127.0.0.1 (pg_hba `trust`), so signing in
with a password proves nothing there. Instead the tests read the role's SCRAM-SHA-256 verifier from
pg_authid (as the superuser) and check it against the password (RFC 5802/7677: StoredKey is
H(HMAC(PBKDF2(password, salt, i), "Client Key"))): only the password it was made from matches.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg import sql

from tests.conftest import POSTGRES_ADMIN_URL

PREFIX = "okms_rot_"


@dataclass(frozen=True)
class ScratchRole:
    role: str
    database: str
    password: str


def verifier(role: str) -> str | None:
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        row = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)).fetchone()
    return None if row is None else row[0]


def scram_matches(stored: str | None, password: str) -> bool:
    """True when `stored` (pg_authid.rolpassword) is a SCRAM-SHA-256 verifier of `password`."""
    if stored is None or not stored.startswith("SCRAM-SHA-256$"):
        return False
    iterations_salt, keys = stored[len("SCRAM-SHA-256$") :].split("$")
    iterations, salt = iterations_salt.split(":")
    stored_key = base64.b64decode(keys.split(":")[0])
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    return hmac.compare_digest(hashlib.sha256(client_key).digest(), stored_key)


@contextmanager
def scratch_role(
    *, createrole: bool = False, database: bool = True, suffix: str = ""
) -> Iterator[ScratchRole]:
    """A login role with a password (and a database it owns), dropped afterwards. `suffix` makes
    a name that needs quoting."""
    name = f"{PREFIX}{uuid.uuid4().hex[:10]}{suffix}"
    password = f"Init-{uuid.uuid4().hex}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} WITH LOGIN {} PASSWORD {}").format(
                sql.Identifier(name), sql.SQL("CREATEROLE" if createrole else ""), sql.Literal(password)
            )
        )
        if database:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(name))
            )
    try:
        yield ScratchRole(name, name if database else "postgres", password)
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            if database:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
