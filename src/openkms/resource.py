"""What a request acted on: one resource, named by its ARN, for the audit record and usage count.

Owns the ARN forms of every resource kind a front door can touch (key, alias, secret, instance,
RAM user, role and policy). A use case returns the resource it touched with its result (`service.outcome`);
an error raised after the resource was known carries it too (`OpenKMSError.resource`). Pure: imports
nothing of the project.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Resource"]


@dataclass(frozen=True, slots=True)
class Resource:
    """A resource by ARN; for keys also the key id and the version the request used."""

    arn: str
    key_id: str | None = None
    key_version_id: str | None = None

    @classmethod
    def key(cls, region_id: str, account_id: str, key_id: str, version_id: str | None = None) -> Resource:
        return cls(f"acs:kms:{region_id}:{account_id}:key/{key_id}", key_id, version_id)

    @classmethod
    def alias(cls, region_id: str, account_id: str, alias_name: str) -> Resource:
        return cls(f"acs:kms:{region_id}:{account_id}:{alias_name}")

    @classmethod
    def secret(cls, arn: str, key_id: str | None = None, key_version_id: str | None = None) -> Resource:
        """A secret by its ARN; with the key (and its version) that sealed or opened its value."""
        return cls(arn, key_id, key_version_id)

    @classmethod
    def instance(cls, region_id: str, account_id: str, instance_id: str) -> Resource:
        return cls(f"acs:kms:{region_id}:{account_id}:keystore/{instance_id}")

    @classmethod
    def account(cls, account_id: str) -> Resource:
        return cls(f"acs:ram::{account_id}:root")

    @classmethod
    def user(cls, account_id: str, user_name: str) -> Resource:
        return cls(f"acs:ram::{account_id}:user/{user_name}")

    @classmethod
    def role(cls, account_id: str, role_name: str) -> Resource:
        return cls(f"acs:ram::{account_id}:role/{role_name}")

    @classmethod
    def policy(cls, account_id: str, policy_name: str, policy_type: str = "Custom") -> Resource:
        owner = "system" if policy_type == "System" else account_id
        return cls(f"acs:ram::{owner}:policy/{policy_name}")

    def with_version(self, version_id: str | None) -> Resource:
        """The same key, naming the version the request used."""
        if version_id is None or version_id == self.key_version_id:
            return self
        return Resource(self.arn, self.key_id, version_id)
