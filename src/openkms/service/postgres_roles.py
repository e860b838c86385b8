"""Setting a PostgreSQL role's password, for the OpenKMS.PostgreSQL managed secret (an OpenKMS
extension, docs/secrets.md).

OpenKMS signs in with the first of the given credentials that the server accepts (the role's own
current or pending password, or a master secret's admin role) and runs `ALTER ROLE <role> PASSWORD
<verifier>`. The verifier is the SCRAM-SHA-256 hash libpq computes on this side
(PQencryptPasswordConn), so the new password never crosses the wire nor reaches the server's
statement log in clear; the role name is quoted by psycopg.sql. Setting the same password twice is
harmless, which is what lets an interrupted rotation be finished later. No password appears in a log
line or an error message.

Only hosts the operator admits (`managed_secret_hosts`) are signed in to, and libpq accepts only
SCRAM-SHA-256 or no authentication (`require_auth`): a server asking for the password in clear or as
MD5 is hung up on before the password leaves.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import psycopg
from psycopg import sql

from openkms.domain.secret_rotation import Credentials, PostgresTarget, host_allowed
from openkms.errors import InvalidArgument, OpenKMSError, RotationFailed, UnsupportedOperation
from openkms.secret import SecretBytes

log = logging.getLogger("openkms.secrets.rotation")

CONNECT_TIMEOUT_SECONDS = 10
VERIFIER_ALGORITHM = b"scram-sha-256"


class PostgresRoles:
    """Changes passwords of roles on the PostgreSQL servers the operator admits
    (`managed_secret_hosts`) that ExtendedConfig names."""

    def __init__(
        self, allowed_hosts: Sequence[str] = (), connect_timeout: int = CONNECT_TIMEOUT_SECONDS
    ) -> None:
        self._allowed = tuple(allowed_hosts)
        self._timeout = connect_timeout

    def check_host(self, target: PostgresTarget) -> None:
        """UnsupportedOperation when managed secrets are off here; InvalidArgument when the host is
        not one the operator admits. Asked at CreateSecret and again before every sign-in."""
        if not self._allowed:
            raise UnsupportedOperation(
                "OpenKMS.PostgreSQL secrets are off on this server: the operator lists the database "
                "hosts OpenKMS may manage in the setting managed_secret_hosts."
            )
        if not host_allowed(target.host, self._allowed):
            raise InvalidArgument(
                f"ExtendedConfig.Host {target.host!r} is not among the database hosts this server may "
                "manage (the setting managed_secret_hosts).",
                parameter="ExtendedConfig",
            )

    def ensure_admitted(self, target: PostgresTarget) -> None:
        """`check_host` for a rotation: RotationFailed (and a warning in the server log, where an
        operator who upgraded without setting `managed_secret_hosts` sees why rotations stopped)."""
        try:
            self.check_host(target)
        except OpenKMSError as exc:
            log.warning("rotation: %s refused: %s", self._where(target), exc.message)
            raise RotationFailed(f"OpenKMS may not rotate at {self._where(target)}: {exc.message}") from None

    def _where(self, target: PostgresTarget) -> str:
        return f"{target.host}:{target.port}/{target.dbname}"

    def _connect(self, target: PostgresTarget, logins: Sequence[Credentials]) -> psycopg.Connection[object]:
        last: str = "no credentials"
        for login in logins:
            try:
                return psycopg.connect(
                    host=target.host,
                    port=target.port,
                    dbname=target.dbname,
                    user=login.account_name,
                    password=login.password.reveal().decode("utf-8"),
                    sslmode=target.sslmode,
                    # The password goes to the server only inside SCRAM (or not at all, when the
                    # server asks for nothing): never in clear or as MD5 to whoever answers there.
                    require_auth="scram-sha-256,none",
                    gssencmode="disable",
                    connect_timeout=self._timeout,
                    application_name="openkms-rotation",
                    autocommit=True,
                )
            except psycopg.OperationalError as exc:
                # libpq's message names host and user, never the password; keep only its class.
                last = type(exc).__name__
                where = self._where(target)
                log.info("rotation: sign-in to %s as %s refused (%s)", where, login.account_name, last)
        raise RotationFailed(
            f"OpenKMS could not sign in to PostgreSQL at {self._where(target)} to rotate the role "
            f"{target.account_name!r} ({last})."
        )

    def set_password(
        self, target: PostgresTarget, logins: Sequence[Credentials], new_password: SecretBytes
    ) -> None:
        """Give `target.account_name` the password `new_password`; RotationFailed if it cannot."""
        self.ensure_admitted(target)
        with self._connect(target, logins) as conn:
            try:
                verifier = conn.pgconn.encrypt_password(
                    new_password.reveal(), target.account_name.encode("utf-8"), VERIFIER_ALGORITHM
                )
                conn.execute(
                    sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                        sql.Identifier(target.account_name), sql.Literal(verifier.decode("ascii"))
                    )
                )
            except psycopg.Error as exc:
                state = getattr(exc, "sqlstate", None) or type(exc).__name__
                raise RotationFailed(
                    f"PostgreSQL at {self._where(target)} refused to change the password of "
                    f"{target.account_name!r} (SQLSTATE {state})."
                ) from None
        log.info("rotation: new password set for role %s at %s", target.account_name, self._where(target))
