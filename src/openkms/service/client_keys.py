"""Client keys of application access points: CreateClientKey, GetClientKey, ListClientKeys,
DeleteClientKey.

CreateClientKey makes an RSA-2048 key pair and hands the private key back once, as a PKCS#12 file
encrypted with the caller's Password (with a self-signed certificate naming the client key and its
validity), in the shape the instance SDKs load. Only the public key is stored; the private key and
the password are never kept, logged or returned again.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from openkms.clock import Clock
from openkms.domain.access_points import (
    CLIENT_KEY_ALGORITHM,
    ClientKey,
    check_client_key_password,
    check_entity_name,
)
from openkms.errors import InvalidArgument, NotFound
from openkms.node.generation import Generation
from openkms.policy.actions import KmsAction
from openkms.repository.database import Database, UnitOfWork
from openkms.resource import Resource
from openkms.secret import SecretBytes
from openkms.service.authorization import authorize_own
from openkms.service.context import RequestContext
from openkms.service.outcome import Outcome

__all__ = ["CLIENT_KEY_PREFIX", "ClientKeyService", "IssuedClientKey", "parse_client_key_time"]

CLIENT_KEY_PREFIX: Final = "KAAP."
DEFAULT_VALIDITY: Final = timedelta(days=5 * 365 + 1)  # Alibaba: NotAfter defaults to five years on
_TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True, slots=True)
class IssuedClientKey:
    """A new client key and its private key, PKCS#12 under the caller's password (the only copy)."""

    client_key: ClientKey
    private_key_data: SecretBytes  # the PKCS#12 bytes

    def private_key_data_base64(self) -> str:
        return base64.b64encode(self.private_key_data.reveal()).decode("ascii")


def parse_client_key_time(raw: str, parameter: str) -> datetime:
    """`yyyy-MM-ddTHH:mm:ssZ` (UTC), as Alibaba documents NotBefore and NotAfter."""
    try:
        return datetime.strptime(raw, _TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise InvalidArgument(
            f"The parameter {parameter} must be a UTC time in the format yyyy-MM-ddTHH:mm:ssZ.",
            parameter=parameter,
        ) from None


def _resource(ctx: RequestContext, client_key_id: str) -> Resource:
    return Resource(f"acs:kms:{ctx.region_id}:{ctx.principal.account_id}:clientkey/{client_key_id}")


class ClientKeyService:
    def __init__(self, db: Database, clock: Clock, generation: Generation | None = None) -> None:
        self._db = db
        self._clock = clock
        self._generation = generation  # bumped after a write: the instance API's cached grants go

    @contextmanager
    def _writing(self) -> Iterator[UnitOfWork]:
        with self._db.unit_of_work(write=True) as uow:
            yield uow
        if self._generation is not None:
            self._generation.bump()

    def create(
        self,
        ctx: RequestContext,
        aap_name: str,
        password: str,
        not_before: str | None,
        not_after: str | None,
    ) -> Outcome[IssuedClientKey]:
        check_entity_name(aap_name, "AapName")
        client_key_id = f"{CLIENT_KEY_PREFIX}{uuid.uuid4()}"
        resource = _resource(ctx, client_key_id)
        # Authorized on the access point it is made for (the key has no ARN anyone could name yet).
        aap_arn = f"acs:kms:{ctx.region_id}:{ctx.principal.account_id}:applicationaccesspoint/{aap_name}"
        authorize_own(ctx, f"kms:{KmsAction.CREATE_CLIENT_KEY}", aap_arn)
        check_client_key_password(password)
        now = self._clock.now().replace(microsecond=0)
        start, end = self._validity(now, not_before, not_after)
        with self._db.unit_of_work() as uow:
            point = uow.access_points.access_point(ctx.principal.account_id, ctx.region_id, aap_name)
        if point is None:
            raise NotFound(f"The specified application access point {aap_name} does not exist.")
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public_der = private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        client_key = ClientKey(
            client_key_id,
            ctx.principal.account_id,
            ctx.region_id,
            aap_name,
            CLIENT_KEY_ALGORITHM,
            public_der,
            start,
            end,
            now,
        )
        bundle = _pkcs12(private_key, client_key, password)
        del private_key
        with self._writing() as uow:
            # The access point may have gone meanwhile: a key of no access point is never stored.
            if uow.access_points.access_point(ctx.principal.account_id, ctx.region_id, aap_name) is None:
                raise NotFound(f"The specified application access point {aap_name} does not exist.")
            uow.access_points.add_client_key(client_key)
        return Outcome(IssuedClientKey(client_key, bundle), resource)

    def get(self, ctx: RequestContext, client_key_id: str) -> Outcome[ClientKey]:
        resource = _resource(ctx, client_key_id)
        authorize_own(ctx, f"kms:{KmsAction.GET_CLIENT_KEY}", resource.arn)
        with self._db.unit_of_work() as uow:
            key = self._own(ctx, uow.access_points.client_key(client_key_id))
        return Outcome(key, resource)

    def list(self, ctx: RequestContext, aap_name: str | None) -> Outcome[list[ClientKey]]:
        authorize_own(ctx, f"kms:{KmsAction.LIST_CLIENT_KEYS}", _resource(ctx, "*").arn)
        with self._db.unit_of_work() as uow:
            found = uow.access_points.client_keys_of(ctx.principal.account_id, ctx.region_id, aap_name)
        return Outcome(found)

    def delete(self, ctx: RequestContext, client_key_id: str) -> Outcome[None]:
        resource = _resource(ctx, client_key_id)
        authorize_own(ctx, f"kms:{KmsAction.DELETE_CLIENT_KEY}", resource.arn)
        with self._writing() as uow:
            self._own(ctx, uow.access_points.client_key(client_key_id))
            uow.access_points.remove_client_key(client_key_id)
        return Outcome(None, resource)

    @staticmethod
    def _own(ctx: RequestContext, key: ClientKey | None) -> ClientKey:
        """The key, if it is the caller's account's and region's; another's is answered as missing."""
        if key is None or key.account_id != ctx.principal.account_id or key.region_id != ctx.region_id:
            raise NotFound("The specified client key does not exist.")
        return key

    @staticmethod
    def _validity(now: datetime, not_before: str | None, not_after: str | None) -> tuple[datetime, datetime]:
        """Both or neither (Alibaba's rule); neither is now to five years on."""
        if not_before is None and not_after is None:
            return now, now + DEFAULT_VALIDITY
        if not_before is None or not_after is None:
            missing = "NotBefore" if not_before is None else "NotAfter"
            raise InvalidArgument(
                f"The parameter {missing} is required when the other of NotBefore and NotAfter is given.",
                parameter=missing,
            )
        start = parse_client_key_time(not_before, "NotBefore")
        end = parse_client_key_time(not_after, "NotAfter")
        if end <= start:
            raise InvalidArgument(
                "The parameter NotAfter must be later than NotBefore.", parameter="NotAfter"
            )
        if end <= now:
            raise InvalidArgument("The parameter NotAfter must be in the future.", parameter="NotAfter")
        return start, end


def _pkcs12(private_key: rsa.RSAPrivateKey, client_key: ClientKey, password: str) -> SecretBytes:
    """The private key with a self-signed certificate naming the client key and its validity, as a
    PKCS#12 encrypted with `password` (the strongest encryption pyca offers: PBES2, AES-256-CBC)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, client_key.client_key_id)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(client_key.not_before)
        .not_valid_after(client_key.not_after)
        .sign(private_key, hashes.SHA256())
    )
    return SecretBytes(
        pkcs12.serialize_key_and_certificates(
            client_key.client_key_id.encode("ascii"),
            private_key,
            certificate,
            None,
            serialization.BestAvailableEncryption(password.encode("utf-8")),
        )
    )
