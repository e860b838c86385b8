"""Who is calling, from where, for which request. What a request acted on flows back with its
result (`service.outcome`), never through the context."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from openkms.domain.access_decision import AccessGrant
from openkms.policy.document import PolicyDocument
from openkms.types import AccountId, RegionId


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: an account's root, a RAM user, an STS session of a RAM role, or an
    application access point's client key (the instance API; `application_principal`)."""

    account_id: AccountId
    name: str  # "root" | "user/<name>" | "assumed-role/<role>/<session>"; a job or service name
    policies: tuple[PolicyDocument, ...] = ()  # identity policies attached to the user or role
    # Who acts (named `actor`, not `kind`): "user" for callers with an access key; "service" for an
    # integrated cloud service (it may manage service keys, alias/acs/<service>); "system" for the
    # server's own jobs. Services and jobs run in the server or the admin CLI, never over the API.
    # "application" for a client key of an application access point (the instance API).
    actor: str = "user"
    # An application's access point, its policies and network rules, read when it authenticated:
    # what `service/authorization.py` decides an application's requests on, with the key's policy.
    grant: AccessGrant | None = None
    # Computed once: a principal lives in the credential cache and names every request's audit record.
    _arn: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_arn", self._make_arn())

    @property
    def is_user(self) -> bool:
        """A caller from outside the server (an access key or a client key), not a job or service."""
        return self.actor in ("user", "application")

    @property
    def arn(self) -> str:
        return self._arn

    def _make_arn(self) -> str:
        if self.actor == "system":
            return f"acs:kms::{self.account_id}:system/{self.name}"
        if self.actor == "service":
            return f"acs:ram::{self.account_id}:service/{self.name}"
        return f"acs:ram::{self.account_id}:{self.name}"

    @property
    def policy_arn(self) -> str:
        """The ARN policies name: a session answers to its role's ARN; the server's jobs and the
        integrated services (in-process actors an administrator runs) act with their account's
        authority, as its root does."""
        if self.actor in ("system", "service"):
            return f"acs:ram::{self.account_id}:root"
        if self.name.startswith("assumed-role/"):
            return f"acs:ram::{self.account_id}:role/{self.name.split('/')[1]}"
        if self.actor == "application":  # its client key answers to the access point's ARN
            return f"acs:ram::{self.account_id}:{self.name.rpartition('/')[0]}"
        return self.arn

    @property
    def kind(self) -> str:
        """Alibaba's AuthPrincipalType: Account, SubUser or AssumedRoleUser (System, Service: ours)."""
        if self.actor == "application":
            return "ApplicationAccessPoint"
        if self.actor != "user":
            return self.actor.capitalize()
        if self.name == "root":
            return "Account"
        return "AssumedRoleUser" if self.name.startswith("assumed-role/") else "SubUser"


class Door(StrEnum):
    """How a request came in; every door goes through the one runner (`service/runner.py`)."""

    RPC = "rpc"  # the Alibaba RPC API (KMS, RAM, STS)
    CONSOLE = "console"  # the web console
    JOB = "job"  # the server's own jobs (rotation, deletion, material expiry)
    CLI = "cli"  # the admin CLI on the server's machine
    INSTANCE = "instance"  # the KMS instance API (protobuf, client keys; `api/instance`)

    @property
    def speaks_http(self) -> bool:
        return self in (Door.RPC, Door.CONSOLE, Door.INSTANCE)


@dataclass(slots=True)
class RequestContext:
    request_id: str
    principal: Principal
    region_id: RegionId
    source_ip: str | None = None
    door: Door = Door.RPC
    received_at: float = 0.0  # epoch seconds, for policy conditions on the current time
    secure_transport: bool = False
    # For policy conditions on tags: the tags this request sets (CreateKey, TagResource) and how to
    # read a key's current tags (only called when a condition asks).
    request_tags: Mapping[str, str] = field(default_factory=dict)
    tags_of: Callable[[str], Mapping[str, str]] | None = None
    # DryRun=true: the use case checks everything and stops before acting (`errors.DryRunPassed`).
    # Set by the action's parameter parsing (`api/actions/base.py: take_dry_run`), before the use
    # case runs; the audit record says so.
    dry_run: bool = False
    # The instance API: the key of the secret an application was allowed to read (CryptoServiceSecretUser),
    # whose Decrypt of the secret's data key that grant covers (`service/authorization.py`).
    secret_key_id: str | None = None


def system_principal(account_id: AccountId, job: str) -> Principal:
    """The principal a server job acts as: the key's own account, so policy and audit apply."""
    return Principal(account_id, job, actor="system")


def operator_principal(account_id: AccountId, user: str) -> Principal:
    """The administrator running the admin CLI on the server's machine, acting in an account."""
    return Principal(account_id, f"operator/{user}", actor="system")


def application_principal(grant: AccessGrant) -> Principal:
    """The client key of an application access point, as the instance API authenticated it: named
    `applicationaccesspoint/<name>/<client key id>` (its ARN in the audit log), answering in key
    policies to `acs:ram::<uid>:applicationaccesspoint/<name>`."""
    key = grant.client_key
    name = f"applicationaccesspoint/{grant.access_point.name}/{key.client_key_id}"
    return Principal(AccountId(key.account_id), name, actor="application", grant=grant)


def service_principal(account_id: AccountId, service: str) -> Principal:
    """An integrated cloud service acting in an account (creates and uses its service key)."""
    return Principal(account_id, service, actor="service")
