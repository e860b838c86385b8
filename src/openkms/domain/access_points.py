"""Application access: the instance API's own access model (network rules, permission policies,
application access points and their client keys), as the service layer hands it out, and the rules
their values must follow.

A network rule names source addresses (IPs and CIDR blocks); a permission policy names an instance,
permission templates, resource patterns (`key/*`, `key/<KeyId>`, `secret/<name>`; a `*` only at the
end) and the network rules it admits requests from; an application access point binds up to three
policies; a client key (`KAAP.<uuid>`, RSA-2048) authenticates as its access point between NotBefore
and NotAfter. Only a client key's public key is ever held. Pure values and checks: no I/O.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from openkms.errors import InvalidArgument

__all__ = [
    "AUTHENTICATION_METHOD",
    "CLIENT_KEY_ALGORITHM",
    "CLIENT_KEY_ORIGIN",
    "MAX_POLICIES_PER_ACCESS_POINT",
    "NETWORK_TYPE",
    "AccessPoint",
    "AccessPolicy",
    "ClientKey",
    "InstancePermission",
    "NetworkRule",
    "check_client_key_password",
    "check_entity_description",
    "check_entity_name",
    "check_permissions",
    "check_resources",
    "check_source_addresses",
    "string_list",
]

AUTHENTICATION_METHOD = "ClientKey"  # the only one Alibaba offers
NETWORK_TYPE = "Private"  # the only network type Alibaba offers
CLIENT_KEY_ALGORITHM = "RSA_2048"
CLIENT_KEY_ORIGIN = "KMS_PROVIDED"
MAX_POLICIES_PER_ACCESS_POINT = 3
MAX_NETWORK_RULES_PER_POLICY = 40  # ALIYUN::KMS::Policy: "up to 40 rules"
MAX_LIST_ITEMS = 100
_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_DESCRIPTION_LIMIT = 1024
_PASSWORD_SPECIALS = "~!@#$%^&*?_-"  # noqa: S105 - the characters a password may use
_RESOURCE = re.compile(r"^(key|secret)/[A-Za-z0-9_.:/\-]*\*?$")


class InstancePermission(StrEnum):
    """The permission templates a policy grants (Alibaba's RBAC templates)."""

    KEY_USER = "RbacPermission/Template/CryptoServiceKeyUser"  # cryptographic operations on keys
    SECRET_USER = "RbacPermission/Template/CryptoServiceSecretUser"  # noqa: S105 - a template name


@dataclass(frozen=True, slots=True)
class NetworkRule:
    account_id: str
    region_id: str
    name: str
    description: str
    network_type: str
    source_addresses: tuple[str, ...]  # as given: IPv4/IPv6 addresses and CIDR blocks
    created_at: datetime

    @property
    def arn(self) -> str:
        return f"acs:kms:{self.region_id}:{self.account_id}:network/{self.name}"

    def admits(self, source_ip: str | None) -> bool:
        """Whether `source_ip` falls in one of the rule's addresses or blocks (never when unknown)."""
        if not source_ip:
            return False
        try:
            address = ipaddress.ip_address(source_ip)
        except ValueError:
            return False
        for entry in self.source_addresses:
            network = ipaddress.ip_network(entry, strict=False)
            if address.version == network.version and address in network:
                return True
        return False


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    account_id: str
    region_id: str
    name: str
    description: str
    kms_instance: str
    permissions: tuple[str, ...]
    resources: tuple[str, ...]
    network_rules: tuple[str, ...]  # the names in AccessControlRules.NetworkRules
    created_at: datetime

    @property
    def arn(self) -> str:
        return f"acs:kms:{self.region_id}:{self.account_id}:policy/{self.name}"

    @property
    def access_control_rules(self) -> str:
        """The AccessControlRules document as Alibaba renders it: `{"NetworkRules":[...]}`."""
        return json.dumps({"NetworkRules": list(self.network_rules)}, separators=(",", ":"))

    def covers(self, resource: str) -> bool:
        """Whether a resource (`key/<KeyId>`, `secret/<name>`) matches one of the policy's patterns."""
        for pattern in self.resources:
            if pattern.endswith("*"):
                if resource.startswith(pattern[:-1]):
                    return True
            elif resource == pattern:
                return True
        return False


@dataclass(frozen=True, slots=True)
class AccessPoint:
    account_id: str
    region_id: str
    name: str
    description: str
    authentication_method: str
    policies: tuple[str, ...]  # policy names, in the order given
    created_at: datetime

    @property
    def arn(self) -> str:
        return f"acs:kms:{self.region_id}:{self.account_id}:applicationaccesspoint/{self.name}"


@dataclass(frozen=True, slots=True)
class ClientKey:
    """A client key's public half and validity. Its private key was handed out once and never kept."""

    client_key_id: str  # KAAP.<uuid>
    account_id: str
    region_id: str
    aap_name: str
    key_algorithm: str
    public_key_der: bytes  # SubjectPublicKeyInfo, DER
    not_before: datetime
    not_after: datetime
    created_at: datetime

    @property
    def arn(self) -> str:
        return f"acs:kms:{self.region_id}:{self.account_id}:clientkey/{self.client_key_id}"

    def valid_at(self, moment: datetime) -> bool:
        return self.not_before <= moment < self.not_after


def _invalid(parameter: str, rule: str) -> InvalidArgument:
    return InvalidArgument(f"The parameter {parameter} {rule}.", parameter=parameter)


def check_entity_name(name: str, parameter: str = "Name") -> str:
    if not _NAME.match(name):
        raise _invalid(parameter, "must be 1 to 64 letters, digits, underscores, hyphens or periods")
    return name


def check_entity_description(description: str | None) -> str:
    if description is None:
        return ""
    if len(description) > _DESCRIPTION_LIMIT:
        raise _invalid("Description", f"must be at most {_DESCRIPTION_LIMIT} characters")
    return description


def string_list(raw: str, parameter: str, *, limit: int = MAX_LIST_ITEMS) -> tuple[str, ...]:
    """A list parameter: a JSON array of strings (`["a","b"]`, as the SDK documents it) or the items
    separated by commas. Items are trimmed; empty items and duplicates are refused."""
    text = raw.strip()
    items: list[object]
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except ValueError:
            raise _invalid(parameter, "must be a JSON array of strings") from None
        if not isinstance(parsed, list):
            raise _invalid(parameter, "must be a JSON array of strings")
        items = parsed
    else:
        items = list(text.split(","))
    out: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise _invalid(parameter, "must list non-empty strings")
        value = item.strip()
        if value in out:
            raise _invalid(parameter, f"names {value!r} twice")
        out.append(value)
    if not out:
        raise _invalid(parameter, "must name at least one item")
    if len(out) > limit:
        raise _invalid(parameter, f"may name at most {limit} items")
    return tuple(out)


def check_source_addresses(addresses: Sequence[str]) -> tuple[str, ...]:
    """Each an IPv4 or IPv6 address or CIDR block (host bits allowed, as in `192.168.1.7/24`)."""
    for entry in addresses:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise _invalid(
                "SourcePrivateIp", f"has {entry!r}, which is not an IP address or CIDR block"
            ) from None
    return tuple(addresses)


def check_permissions(permissions: Sequence[str]) -> tuple[str, ...]:
    known = {p.value for p in InstancePermission}
    for permission in permissions:
        if permission not in known:
            raise _invalid("Permissions", f"has {permission!r}; valid values are {', '.join(sorted(known))}")
    return tuple(permissions)


def check_resources(resources: Sequence[str]) -> tuple[str, ...]:
    """`key/<KeyId>`, `secret/<SecretName>`, or either ending in `*` (`key/*`)."""
    for resource in resources:
        if not _RESOURCE.match(resource) or resource in ("key/", "secret/"):
            raise _invalid(
                "Resources", f"has {resource!r}; use key/<KeyId>, secret/<SecretName>, key/* or secret/*"
            )
    return tuple(resources)


def check_client_key_password(password: str) -> str:
    """Alibaba's rule: 8 to 64 characters of at least two kinds among digits, letters and the
    special characters ~ ! @ # $ % ^ & * ? _ -, and nothing else."""
    if not 8 <= len(password) <= 64:
        raise _invalid("Password", "must be 8 to 64 characters long")
    kinds = set()
    for char in password:
        if char.isascii() and char.isdigit():
            kinds.add("digit")
        elif char.isascii() and char.isalpha():
            kinds.add("letter")
        elif char in _PASSWORD_SPECIALS:
            kinds.add("special")
        else:
            raise _invalid("Password", f"may hold only letters, digits and {' '.join(_PASSWORD_SPECIALS)}")
    if len(kinds) < 2:
        raise _invalid("Password", "must mix at least two of digits, letters and special characters")
    return password
