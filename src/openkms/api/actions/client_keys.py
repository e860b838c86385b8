"""Client key actions (2016-01-20): CreateClientKey, GetClientKey, ListClientKeys, DeleteClientKey.

CreateClientKey's PrivateKeyData (base64 PKCS#12 under the caller's Password) is the one explicit
path a client key's private key leaves by; nothing else ever returns it.
"""

from __future__ import annotations

from collections.abc import Mapping

from cryptography.hazmat.primitives import serialization

from openkms.api.actions.base import Action, empty
from openkms.api.params import Params
from openkms.clock import iso_utc
from openkms.domain.access_points import CLIENT_KEY_ORIGIN, ClientKey
from openkms.service.client_keys import IssuedClientKey
from openkms.service.container import Services
from openkms.service.context import RequestContext
from openkms.service.outcome import Outcome


def public_key_pem(key: ClientKey) -> str:
    """The client key's public key as PEM (SubjectPublicKeyInfo)."""
    loaded = serialization.load_der_public_key(key.public_key_der)
    return loaded.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def _created(issued: IssuedClientKey) -> Mapping[str, object]:
    key = issued.client_key
    return {
        "ClientKeyId": key.client_key_id,
        "KeyAlgorithm": key.key_algorithm,
        "NotBefore": iso_utc(key.not_before),
        "NotAfter": iso_utc(key.not_after),
        "PrivateKeyData": issued.private_key_data_base64(),
    }


def _described(key: ClientKey) -> Mapping[str, object]:
    return {
        "ClientKeyId": key.client_key_id,
        "AapName": key.aap_name,
        "KeyAlgorithm": key.key_algorithm,
        "KeyOrigin": CLIENT_KEY_ORIGIN,
        "NotBefore": iso_utc(key.not_before),
        "NotAfter": iso_utc(key.not_after),
        "CreateTime": iso_utc(key.created_at),
        "PublicKeyData": public_key_pem(key),
    }


def create_client_key(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    return services.client_keys.create(
        ctx,
        params.required_str("AapName"),
        params.required_str("Password"),
        params.optional_str("NotBefore"),
        params.optional_str("NotAfter"),
    ).map(_created)


def get_client_key(params: Params, ctx: RequestContext, services: Services) -> Outcome[Mapping[str, object]]:
    return services.client_keys.get(ctx, params.required_str("ClientKeyId")).map(_described)


def list_client_keys(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    listed = services.client_keys.list(ctx, params.optional_str("AapName"))
    return listed.map(lambda keys: {"ClientKeys": [_described(key) for key in keys]})


def delete_client_key(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    return empty(services.client_keys.delete(ctx, params.required_str("ClientKeyId")))


ACTIONS = (
    Action("CreateClientKey", create_client_key, frozenset({"AapName", "Password", "NotBefore", "NotAfter"})),
    Action("GetClientKey", get_client_key, frozenset({"ClientKeyId"})),
    Action("ListClientKeys", list_client_keys, frozenset({"AapName"})),
    Action("DeleteClientKey", delete_client_key, frozenset({"ClientKeyId"})),
)
