"""The services of one process, built once by the application factory and passed down."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

from openkms.clock import Clock
from openkms.domain.audit_heads import HeadStore
from openkms.keystore import Keystore
from openkms.node.generation import Generation
from openkms.providers.external import external_provider
from openkms.providers.hardware import make_hardware_provider
from openkms.providers.registry import ProviderRegistry
from openkms.providers.software import SoftwareProvider
from openkms.repository.database import Database
from openkms.service.access_points import AccessPointService
from openkms.service.aliases import AliasService
from openkms.service.asymmetric import AsymmetricService
from openkms.service.audit_log import AuditLogService
from openkms.service.cache import TtlCache
from openkms.service.client_keys import ClientKeyService
from openkms.service.crypto import CryptoService
from openkms.service.data_key_export import DataKeyExportService
from openkms.service.identities import IdentityService
from openkms.service.instance_ca import InstanceCa
from openkms.service.instance_sharing import InstanceSharingService
from openkms.service.instances import DEFAULT_SPEC, InstanceService
from openkms.service.key_import import KeyImportService
from openkms.service.key_ops import KeyOperations
from openkms.service.key_policy import KeyPolicyService
from openkms.service.key_stores import KeyStoreService, instance_secret
from openkms.service.keys import DEFAULT_KEY_QUOTA, KeyService
from openkms.service.lifecycle import LifecycleService
from openkms.service.login_profiles import LoginProfileService
from openkms.service.postgres_roles import PostgresRoles
from openkms.service.ram import RamService
from openkms.service.secret_rotation import SecretRotationService
from openkms.service.secret_tags import SecretTagService
from openkms.service.secret_values import SecretSealer
from openkms.service.secret_versions import SecretVersionService
from openkms.service.secrets import DEFAULT_SECRET_QUOTA, SecretService
from openkms.service.service_keys import ServiceKeyService
from openkms.service.service_secrets import AUDIT_CHAIN_SECRET, service_secret
from openkms.service.sharing import DEFAULT_QUOTA, DEFAULT_RELEASE_SECONDS, InstanceAccess
from openkms.service.sign_in import SignInPolicy, SignInService
from openkms.service.sts import StsService
from openkms.service.sts_tokens import TokenCodec
from openkms.service.tags import TagService
from openkms.service.usage import AssociationService, UsageRecorder
from openkms.types import InstanceKind


@dataclass(frozen=True, slots=True)
class Services:
    db: Database
    keystore: Keystore
    clock: Clock
    identities: IdentityService
    keys: KeyService
    crypto: CryptoService
    instances: InstanceService
    ram: RamService
    key_policies: KeyPolicyService
    sts: StsService
    asymmetric: AsymmetricService
    data_key_export: DataKeyExportService
    access: InstanceAccess
    usage: UsageRecorder
    associations: AssociationService
    lifecycle: LifecycleService
    aliases: AliasService
    tags: TagService
    generation: Generation
    service_keys: ServiceKeyService
    key_import: KeyImportService
    sign_in: SignInService
    login_profiles: LoginProfileService
    instance_sharing: InstanceSharingService
    audit_log: AuditLogService
    key_stores: KeyStoreService
    providers: ProviderRegistry
    access_points: AccessPointService
    client_keys: ClientKeyService
    instance_ca: InstanceCa
    secrets: SecretService
    secret_versions: SecretVersionService
    secret_tags: SecretTagService
    secret_rotation: SecretRotationService


def software_providers(keystore: Keystore, generation: Generation) -> ProviderRegistry:
    """The providers of a process whose key stores are all software (unit tests of the service layer)."""
    providers = ProviderRegistry()
    providers.register(InstanceKind.SOFTWARE, SoftwareProvider(keystore, changes=generation.current))
    return providers


def key_store_providers(db: Database, keystore: Keystore, generation: Generation) -> ProviderRegistry:
    """The providers of a server: one software provider, and a provider per hardware instance (its HSM
    through PKCS#11) and per external instance (its XKS proxy), made from the instance's settings and
    its secret (unsealed from the store when the provider is made)."""
    providers = ProviderRegistry(secrets=partial(instance_secret, db, keystore))
    providers.register(InstanceKind.SOFTWARE, SoftwareProvider(keystore, changes=generation.current))
    providers.register_factory(InstanceKind.HARDWARE, make_hardware_provider)
    providers.register_factory(
        InstanceKind.EXTERNAL,
        lambda instance, secret: external_provider(keystore, instance, secret, changes=generation.current),
    )
    return providers


def build_services(
    db: Database,
    keystore: Keystore,
    clock: Clock,
    generation: Generation,
    cache_ttl: float,
    providers: ProviderRegistry,
    *,
    access_quota: int = DEFAULT_QUOTA,
    secret_quota: int = DEFAULT_SECRET_QUOTA,
    managed_secret_hosts: tuple[str, ...] = (),
    key_quota: int = DEFAULT_KEY_QUOTA,
    crypto_rate: int = DEFAULT_SPEC,
    grant_release_seconds: float = DEFAULT_RELEASE_SECONDS,
    sign_in_policy: SignInPolicy | None = None,
    audit_dir: Path | None = None,
    audit_heads: HeadStore | None = None,
) -> Services:
    """`audit_dir` and `audit_heads`: this node's audit files and their sealed heads, which the
    audit log's readers (the console's Audit page) read; None where a process keeps no log."""
    access = InstanceAccess(db, clock, access_quota, grant_release_seconds)
    service_keys = ServiceKeyService(db, providers, clock, generation)
    keys = KeyService(db, providers, clock, generation, cache_ttl, access, key_quota=key_quota)
    operations = KeyOperations(db, keys, clock, generation, cache_ttl, service_keys)
    identities = IdentityService(db, keystore, generation, cache_ttl, TokenCodec(db, keystore, clock), clock)
    crypto = CryptoService(operations)
    usage = UsageRecorder(db)
    sealer = SecretSealer(crypto, usage)
    secret_versions = SecretVersionService(db, sealer, clock)
    secret_rotation = SecretRotationService(
        db, sealer, secret_versions, clock, PostgresRoles(managed_secret_hosts)
    )

    def audit_chain_key() -> bytes | None:
        if keystore.sealed:
            return None
        return service_secret(db, keystore, clock, AUDIT_CHAIN_SECRET, "audit chain HMAC").reveal()

    return Services(
        db=db,
        keystore=keystore,
        clock=clock,
        identities=identities,
        keys=keys,
        crypto=crypto,
        instances=InstanceService(db, spec=crypto_rate),
        ram=RamService(db, keystore, clock, generation),
        key_policies=KeyPolicyService(keys, access, clock),
        access=access,
        usage=usage,
        associations=AssociationService(db, keys, clock, usage),
        sts=StsService(db, clock, identities),
        asymmetric=AsymmetricService(operations),
        data_key_export=DataKeyExportService(crypto, keys),
        lifecycle=LifecycleService(db, keys, providers, clock, access),
        aliases=AliasService(db, keys, clock, generation),
        tags=TagService(db, keys),
        generation=generation,
        service_keys=service_keys,
        key_import=KeyImportService(db, keys, providers, keystore, clock),
        sign_in=SignInService(db, clock, sign_in_policy or SignInPolicy()),
        login_profiles=LoginProfileService(db, clock),
        instance_sharing=InstanceSharingService(db, access),
        audit_log=AuditLogService(audit_dir, audit_heads, audit_chain_key, clock),
        key_stores=KeyStoreService(db, keystore, providers, clock),
        providers=providers,
        access_points=AccessPointService(
            db, clock, TtlCache(cache_ttl, generation, name="client_keys"), generation
        ),
        client_keys=ClientKeyService(db, clock, generation),
        instance_ca=InstanceCa(db, keystore, clock),
        secrets=SecretService(
            db, keys, service_keys, sealer, clock, secret_quota, secret_rotation.check_target
        ),
        secret_versions=secret_versions,
        secret_tags=SecretTagService(db),
        secret_rotation=secret_rotation,
    )
