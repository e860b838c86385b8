"""Making and destroying key versions' material in the backend of their instance, all or nothing.

Owns `NewMaterial`: every path that makes a version (CreateKey, CreateKeyVersion, the rotation job,
service keys) asks the provider of the key's instance for new material here, outside the database
transaction, then writes the version and calls `keep()` once the transaction committed. Material the
caller did not keep (the transaction failed, or the rotation found it was not due after all) is
destroyed again when the backend holds it itself (an HSM's token objects), so a failed request leaves
no orphan key in the token. Owns `destroy_in_backend` too: when OpenKMS destroys a key's versions
(scheduled deletion's end, DeleteKeyMaterial, expiry), the backend's objects are destroyed inside the
same transaction, before the rows are wiped; if the backend cannot be reached the transaction rolls
back and the job retries. Never sees key material: only what the provider returns to store.
"""

from __future__ import annotations

import logging
from types import TracebackType

from openkms.domain.instance import Instance
from openkms.domain.specs import SPEC_RULES
from openkms.errors import OpenKMSError
from openkms.providers.base import KEY_PAIRS, MATERIAL_DESTRUCTION, SYMMETRIC, MaterialRef, NewVersion
from openkms.providers.registry import ProviderRegistry
from openkms.types import KeyId, KeySpec, KeyVersionId

__all__ = ["WRAPPING_KEY_SPEC", "NewMaterial", "destroy_in_backend"]

# The spec an import token's wrapping key pair is destroyed as (GetParametersForImport makes RSA-2048).
WRAPPING_KEY_SPEC = KeySpec.RSA_2048

log = logging.getLogger(__name__)


class NewMaterial:
    """`with NewMaterial(providers, instance, new) as made:` ... store `made.stored` ... `made.keep()`."""

    def __init__(self, providers: ProviderRegistry, instance: Instance | None, new: NewVersion) -> None:
        self._providers = providers
        self._instance = instance
        self._new = new
        if SPEC_RULES[new.spec].symmetric:
            self.stored = providers.for_instance(instance, SYMMETRIC).generate_symmetric(new)
        else:
            self.stored = providers.for_instance(instance, KEY_PAIRS).generate_key_pair(new)
        self._kept = False

    def __enter__(self) -> NewMaterial:
        return self

    def keep(self) -> bytes:
        """The material is now the version's (its transaction committed): it is not destroyed."""
        self._kept = True
        return self.stored

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._kept or self._instance is None:
            return
        try:
            destroyer = self._providers.for_instance(self._instance, MATERIAL_DESTRUCTION)
        except OpenKMSError:
            return  # the backend keeps nothing of its own (software): the bytes simply go
        new = self._new
        try:
            destroyer.destroy(MaterialRef(new.key_id, new.version_id, new.spec, self.stored))
        except OpenKMSError:
            # The version was never written, so nothing refers to the object; say so for the operator.
            log.warning(
                "material made for version %s of %s in %s was not kept and could not be destroyed",
                new.version_id,
                new.key_id,
                self._instance.instance_id,
            )


def destroy_in_backend(
    providers: ProviderRegistry,
    instance: Instance | None,
    key_id: KeyId,
    spec: KeySpec,
    stored: list[tuple[KeyVersionId, bytes]] | list[tuple[str, bytes]],
) -> None:
    """Destroy the backend's material of these versions (nothing to do for software: the database
    rows are the material). KeyStoreUnavailable propagates: the caller's transaction rolls back."""
    if instance is None or not stored:
        return
    try:
        destroyer = providers.for_instance(instance, MATERIAL_DESTRUCTION)
    except OpenKMSError:
        return
    for version_id, material in stored:
        destroyer.destroy(MaterialRef(key_id, KeyVersionId(version_id), spec, material))
