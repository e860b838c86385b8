"""The external provider against a live proxy on SoftHSM2: double encryption, tampering with either
layer, neither side alone decrypting, and the faults of the proxy."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from starlette.types import ASGIApp, Receive, Scope, Send

from openkms.domain.instance import Instance
from openkms.errors import ExternalKeyError, InvalidCiphertext, KeyStoreUnavailable, Sealed
from openkms.keystore import Keystore
from openkms.providers.base import HEALTH_CHECK, SYMMETRIC, Invocation, MaterialRef, NewVersion
from openkms.providers.external import ExternalProvider, external_provider
from openkms.secret import SecretBytes
from openkms.testing.keyring import MemoryKeyringStore, StaticRoot
from openkms.types import AccountId, InstanceId, InstanceKind, KeyId, KeySpec, KeyVersionId, RegionId
from openkms.xks.client import RequestMetadata, XksClient
from openkms.xks.proxy import create_app
from tests.xks.conftest import ACCESS_KEY_ID, PREFIX, SECRET, LiveProxy, proxy_config, serve
from tests.xks.token import SoftToken

SPEC = KeySpec.ALIYUN_AES_256
KEY = KeyId("key-00000000-0000-0000-0000-000000000001")
AAD = b"encryption-context-derived aad"
CALLER = Invocation("acs:ram::1234:user/alice", f"acs:kms:cn-hangzhou:1234:key/{KEY}", "Encrypt", "req-42")


@pytest.fixture
def keystore() -> Keystore:
    keystore = Keystore(StaticRoot(), MemoryKeyringStore())
    keystore.unseal()
    return keystore


@pytest.fixture
def make_provider(
    keystore: Keystore, make_client: Callable[..., XksClient]
) -> Callable[..., ExternalProvider]:
    def make(endpoint: str, **kw: Any) -> ExternalProvider:
        return ExternalProvider(keystore, make_client(endpoint, **kw), "kst-test-1")

    return make


def new_ref(
    provider: ExternalProvider, external_key_id: str | None = "key-1", version: str = "v1"
) -> MaterialRef:
    version_id = KeyVersionId(version)
    stored = provider.generate_symmetric(NewVersion(KEY, version_id, SPEC, (), external_key_id))
    return MaterialRef(KEY, version_id, SPEC, stored)


def test_round_trip_binds_the_aad_on_both_layers(
    proxy: LiveProxy, make_provider: Callable[..., ExternalProvider], caplog: pytest.LogCaptureFixture
) -> None:
    provider = make_provider(proxy.endpoint)
    assert SYMMETRIC.offered_by(provider) is provider and HEALTH_CHECK.offered_by(provider) is provider
    ref = new_ref(provider)
    with caplog.at_level(logging.INFO, logger="openkms.xks.proxy"):
        iv, sealed = provider.encrypt(ref, b"secret data", AAD, CALLER)
    assert len(iv) == 12 and len(sealed) >= 16 + 16
    assert (
        provider.decrypt(ref, iv, sealed, AAD, CALLER._replace(action="Decrypt")).reveal() == b"secret data"
    )
    assert provider.decrypt(ref, iv, sealed, AAD).reveal() == b"secret data"  # a job: no invocation
    with pytest.raises(InvalidCiphertext):
        provider.decrypt(ref, iv, sealed, AAD + b"!")
    logged = json.loads(caplog.records[-1].getMessage().removeprefix("xks "))
    assert logged["requestMetadata"] == {
        "awsPrincipalArn": CALLER.principal_arn,
        "kmsKeyArn": CALLER.key_arn,
        "kmsOperation": "Encrypt",
        "kmsRequestId": "req-42",
    }
    assert "kst-test-1" in repr(provider) and "FYtE5" not in repr(provider)


def test_tampering_with_either_layer_is_invalid_ciphertext(
    proxy: LiveProxy, make_provider: Callable[..., ExternalProvider]
) -> None:
    provider = make_provider(proxy.endpoint)
    ref = new_ref(provider)
    iv, sealed = provider.encrypt(ref, b"secret data", AAD)
    flipped_iv = bytes([iv[0] ^ 1]) + iv[1:]
    with pytest.raises(InvalidCiphertext):  # the inner layer
        provider.decrypt(ref, flipped_iv, sealed, AAD)
    for at in (2, 2 + 12 + 1, len(sealed) - 1):  # the proxy's IV, its tag, the ciphertext
        bad = bytearray(sealed)
        bad[at] ^= 1
        with pytest.raises(InvalidCiphertext):
            provider.decrypt(ref, iv, bytes(bad), AAD)
    for broken in (b"", sealed[:20], b"\x02" + sealed[1:], sealed[:1] + b"\x0d" + sealed[2:], iv):
        with pytest.raises(InvalidCiphertext):
            provider.decrypt(ref, iv, broken, AAD)
    with pytest.raises(InvalidCiphertext):
        provider.decrypt(ref, iv[:8], sealed, AAD)


def test_neither_the_proxy_nor_the_inner_key_alone_decrypts(
    proxy: LiveProxy,
    make_provider: Callable[..., ExternalProvider],
    make_client: Callable[..., XksClient],
    keystore: Keystore,
) -> None:
    provider = make_provider(proxy.endpoint)
    ref = new_ref(provider)
    plaintext = b"only both layers together open this"
    iv, sealed = provider.encrypt(ref, plaintext, AAD)
    outer_iv, tag, outer_ct = sealed[2:14], sealed[15:31], sealed[31:]
    # The proxy's side: it opens its layer and gets the inner ciphertext, not the plaintext.
    meta = RequestMetadata("acs:ram::1:user/x", "Decrypt", "r", f"acs:kms:cn-hangzhou:1234:key/{KEY}")
    inner = make_client(proxy.endpoint).decrypt("key-1", outer_ct, outer_iv, tag, AAD, meta).reveal()
    assert plaintext not in inner and len(inner) == len(plaintext) + 16
    # OpenKMS's side: the inner key (unwrapped by the keystore) does not open what the blob carries.
    inner_key = keystore.unwrap(KEY, ref.version_id, SPEC, ref.wrapped[4 + 1 + len("key-1") :])
    with pytest.raises(InvalidTag):
        AESGCM(inner_key.reveal()).decrypt(iv, outer_ct, AAD)
    # Both together do.
    assert AESGCM(inner_key.reveal()).decrypt(iv, inner, AAD) == plaintext


def test_rotation_makes_a_new_inner_key_for_the_same_external_key(
    proxy: LiveProxy, make_provider: Callable[..., ExternalProvider]
) -> None:
    provider = make_provider(proxy.endpoint)
    first, second = new_ref(provider, version="v1"), new_ref(provider, version="v2")
    assert first.wrapped != second.wrapped
    for ref in (first, second):
        iv, sealed = provider.encrypt(ref, b"x", AAD)
        assert provider.decrypt(ref, iv, sealed, AAD).reveal() == b"x"
    iv, sealed = provider.encrypt(first, b"x", AAD)
    with pytest.raises(InvalidCiphertext):
        provider.decrypt(second, iv, sealed, AAD)


def test_creation_checks_the_external_key(
    proxy: LiveProxy, make_provider: Callable[..., ExternalProvider]
) -> None:
    provider = make_provider(proxy.endpoint)
    for external_id, reason in [
        ("no-such-key", "not found"),
        ("off-1", "disabled"),
        ("small-1", "not an AES_256"),
        ("decrypt-only", "does not allow ENCRYPT"),
        (None, "needs the id"),
        ("bad id/..", "not valid"),
    ]:
        with pytest.raises(ExternalKeyError, match=reason):
            new_ref(provider, external_id)


def test_a_key_disabled_at_the_proxy_is_an_external_key_error(
    proxy: LiveProxy, token: SoftToken, make_provider: Callable[..., ExternalProvider]
) -> None:
    ref = new_ref(make_provider(proxy.endpoint))
    iv, sealed = make_provider(proxy.endpoint).encrypt(ref, b"x", AAD)
    disabled = serve(create_app(proxy_config(token, disabled=frozenset({"key-1"})), token.sessions()))
    try:
        provider = make_provider(disabled.endpoint)
        with pytest.raises(ExternalKeyError, match="disabled"):
            provider.encrypt(ref, b"x", AAD)
        with pytest.raises(ExternalKeyError, match="disabled"):
            provider.decrypt(ref, iv, sealed, AAD)
    finally:
        disabled.stop()


def test_a_proxy_that_is_down_is_unavailable(
    make_provider: Callable[..., ExternalProvider], proxy: LiveProxy
) -> None:
    ref = new_ref(make_provider(proxy.endpoint))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        provider = make_provider(f"http://127.0.0.1:{port}")
        with pytest.raises(KeyStoreUnavailable, match=r"kst-test-1.*cannot be reached"):
            provider.encrypt(ref, b"x", AAD)
        with pytest.raises(KeyStoreUnavailable, match="cannot be reached"):
            provider.check_health()


class _Slow:
    """A real proxy behind a delay longer than the client's timeout."""

    def __init__(self, app: ASGIApp, delay: float) -> None:
        self.app, self.delay = app, delay

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(self.delay)
        await self.app(scope, receive, send)


@pytest.fixture
def slow_proxy(token: SoftToken) -> Iterator[LiveProxy]:
    live = serve(_Slow(create_app(proxy_config(token), token.sessions()), 0.6))
    yield live
    live.stop()


def test_a_slow_proxy_is_unavailable(
    slow_proxy: LiveProxy, proxy: LiveProxy, make_provider: Callable[..., ExternalProvider]
) -> None:
    ref = new_ref(make_provider(proxy.endpoint))
    provider = make_provider(slow_proxy.endpoint, timeout=0.2)
    with pytest.raises(KeyStoreUnavailable, match=r"did not answer within 0\.2 seconds"):
        provider.encrypt(ref, b"x", AAD)
    patient = make_provider(slow_proxy.endpoint, timeout=3)
    iv, sealed = patient.encrypt(ref, b"x", AAD)
    assert patient.decrypt(ref, iv, sealed, AAD).reveal() == b"x"


def test_wrong_credentials_are_unavailable(
    proxy: LiveProxy, make_provider: Callable[..., ExternalProvider]
) -> None:
    ref = new_ref(make_provider(proxy.endpoint))
    provider = make_provider(proxy.endpoint, secret="Z" * 43)
    with pytest.raises(KeyStoreUnavailable, match="refused OpenKMS's credential") as caught:
        provider.encrypt(ref, b"x", AAD)
    assert "Z" * 8 not in str(caught.value)
    other_id = make_provider(proxy.endpoint, access_key_id="AKIAUNKNOWNEXAMPLE22")
    with pytest.raises(KeyStoreUnavailable, match="credential"):
        other_id.check_health()


def test_health_and_sealed_keystore(
    proxy: LiveProxy, make_provider: Callable[..., ExternalProvider], keystore: Keystore
) -> None:
    provider = make_provider(proxy.endpoint)
    assert "1 of 1 key managers active" in provider.check_health()
    ref = new_ref(provider)
    iv, sealed = provider.encrypt(ref, b"x", AAD)
    keystore.seal()
    with pytest.raises(Sealed):
        provider.encrypt(ref, b"x", AAD)
    with pytest.raises(Sealed):
        provider.decrypt(ref, iv, sealed, AAD)


def _instance(settings: dict[str, str]) -> Instance:
    return Instance(
        InstanceId("kst-hzz-test-2"),
        AccountId("1234"),
        RegionId("cn-hangzhou"),
        InstanceKind.EXTERNAL,
        "xks",
        datetime.now(UTC),
        0,
        settings,
    )


def test_the_factory_makes_a_provider_from_instance_settings(proxy: LiveProxy, keystore: Keystore) -> None:
    settings = {
        "endpoint": proxy.endpoint,
        "path_prefix": PREFIX,
        "access_key_id": ACCESS_KEY_ID,
        "allow_http": "true",
        "timeout_seconds": "2",
    }
    provider = external_provider(keystore, _instance(settings), SecretBytes(SECRET.encode()))
    try:
        ref = new_ref(provider)
        iv, sealed = provider.encrypt(ref, b"from settings", AAD)
        assert provider.decrypt(ref, iv, sealed, AAD).reveal() == b"from settings"
    finally:
        provider.close()
    secret = SecretBytes(SECRET.encode())
    for bad, reason in [
        ({**settings, "allow_http": "false"}, "https"),
        ({k: v for k, v in settings.items() if k != "endpoint"}, "endpoint is missing"),
        ({**settings, "ca_file": "/nonexistent/ca.pem"}, "kst-hzz-test-2"),
    ]:
        with pytest.raises(KeyStoreUnavailable, match=reason):
            external_provider(keystore, _instance(bad), secret)
    with pytest.raises(KeyStoreUnavailable, match="secret access key is missing"):
        external_provider(keystore, _instance(settings), None)


def test_concurrent_callers_share_the_client_and_the_token_pool(
    proxy: LiveProxy, make_provider: Callable[..., ExternalProvider]
) -> None:
    provider = make_provider(proxy.endpoint)
    ref = new_ref(provider)

    def one(n: int) -> bytes:
        data = f"message {n}".encode()
        iv, sealed = provider.encrypt(ref, data, AAD)
        return provider.decrypt(ref, iv, sealed, AAD).reveal()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(64)))
    assert results == [f"message {n}".encode() for n in range(64)]
