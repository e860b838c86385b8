"""The services of one process, built once by the application factory and passed down."""

from __future__ import annotations

from dataclasses import dataclass

from openkms.clock import Clock
from openkms.keystore import Keystore
from openkms.node.generation import Generation
from openkms.providers.software import SoftwareProvider
from openkms.repository.database import Database
from openkms.service.aliases import AliasService
from openkms.service.crypto import CryptoService
from openkms.service.identities import IdentityService
from openkms.service.instances import InstanceService
from openkms.service.keys import KeyService
from openkms.service.lifecycle import LifecycleService
from openkms.service.service_keys import ServiceKeyService
from openkms.service.tags import TagService


@dataclass(frozen=True, slots=True)
class Services:
    db: Database
    keystore: Keystore
    clock: Clock
    identities: IdentityService
    keys: KeyService
    crypto: CryptoService
    instances: InstanceService
    lifecycle: LifecycleService
    aliases: AliasService
    tags: TagService
    generation: Generation
    service_keys: ServiceKeyService


def build_services(
    db: Database, keystore: Keystore, clock: Clock, generation: Generation, cache_ttl: float
) -> Services:
    provider = SoftwareProvider(keystore)
    service_keys = ServiceKeyService(db, provider, clock, generation)
    keys = KeyService(db, provider, clock, generation, cache_ttl, service_keys)
    return Services(
        db=db,
        keystore=keystore,
        clock=clock,
        identities=IdentityService(db, keystore, generation, cache_ttl),
        keys=keys,
        crypto=CryptoService(db, keys, provider, generation, cache_ttl),
        instances=InstanceService(db),
        lifecycle=LifecycleService(db, keys, provider, clock, generation),
        aliases=AliasService(db, keys, clock, generation),
        tags=TagService(db, keys),
        generation=generation,
        service_keys=service_keys,
    )
