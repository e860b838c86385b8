"""Alibaba's Python secrets clients, unchanged, against a live OpenKMS over HTTPS: the secrets-manager
client `aliyun-secret-manager-client` 0.1.5 and its successor `alibabacloud-secretsmanager-client-v2`
2.0.0, each configured the way its README documents (environment variables, a `.properties` file),
and the unified KMS SDK (`alibabacloud-kms-python-sdk` 1.1.3) on the OpenAPI path.

The clients pin packages that clash with the test venv, so they run in the clients' venv
(tests/clients/python/venv.py) under tests/clients/python/secrets_driver.py, one process per
configuration. Both secrets-manager clients insist on HTTPS for an endpoint given this way, so the
server here serves HTTPS under a CA of the test's own (tests/support/tls.py). What each library does
with that CA is read from its source and written in docs/secrets.md ("Client libraries")."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.api.test_identities import new_user
from tests.clients.python.session import DriverSession
from tests.support.products import Caller
from tests.support.sdk import KmsCaller
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer, free_port
from tests.support.tls import TlsFiles, make_tls_files

DRIVER = Path(__file__).resolve().parent / "python" / "secrets_driver.py"
REGION = "cn-hangzhou"
BINARY = b"\x00\x01binary\xff"
# How long a refresh may take to show, at most: the TTL is one second, so it normally takes about that.
REFRESH_DEADLINE_SECONDS = 120


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("clients-tls"))


@pytest.fixture(scope="module")
def https_server(tmp_path_factory: pytest.TempPathFactory, tls: TlsFiles) -> Iterator[LiveServer]:
    live = LiveServer(
        tmp_path_factory.mktemp("clients-https") / "data",
        extra_args=["--tls-cert", str(tls.cert), "--tls-key", str(tls.key)],
        tls_ca=tls.ca,
    )
    live.start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def root(https_server: LiveServer, tls: TlsFiles) -> KmsCaller:
    return KmsCaller("tea-acs3", https_server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET, ca=str(tls.ca))


@pytest.fixture(scope="module")
def outsider(https_server: LiveServer, tls: TlsFiles) -> tuple[str, str]:
    """(access key id, secret) of a RAM user of the account with no policy at all."""
    ram = Caller("ram", https_server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET, ca=str(tls.ca))
    _, key_id, secret = new_user(ram)
    return key_id, secret


@dataclass(frozen=True)
class Secrets:
    cached: str  # text, read with the library's default TTL (an hour)
    refreshed: str  # text, read with a TTL of one second
    binary: str


@pytest.fixture
def secrets(root: KmsCaller) -> Iterator[Secrets]:
    instance = root.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    key_id = root.call("CreateKey", DKMSInstanceId=instance)["KeyMetadata"]["KeyId"]
    tag = uuid.uuid4().hex[:8]
    made = Secrets(f"app/cached-{tag}", f"app/refreshed-{tag}", f"app/blob-{tag}")
    for name in (made.cached, made.refreshed):
        root.call("CreateSecret", SecretName=name, VersionId="v1", SecretData="first", EncryptionKeyId=key_id)
    root.call(
        "CreateSecret",
        SecretName=made.binary,
        VersionId="v1",
        SecretData=base64.b64encode(BINARY).decode(),
        SecretDataType="binary",
        EncryptionKeyId=key_id,
    )
    yield made
    for name in (made.cached, made.refreshed, made.binary):
        root.call("DeleteSecret", SecretName=name, ForceDeleteWithoutRecovery="true")


# ---- the secrets-manager clients, configured as their READMEs document ------------------------------

# (library, route): "env" is environment variables, "properties" a `.properties` file named with the
# builder's with_custom_config_file. Both libraries read the same names.
CONFIGURATIONS = [("old", "env"), ("v2", "env"), ("v2", "properties")]


def _configuration(
    library: str, route: str, server: LiveServer, tls: TlsFiles, folder: Path, key: tuple[str, str]
) -> tuple[dict[str, str], str | None]:
    """(environment, properties file or None) that point `library` at the server as `key`."""
    settings = {
        "credentials_type": "ak",
        "credentials_access_key_id": key[0],
        "credentials_access_secret": key[1],
        "cache_client_region_id": json.dumps([{"regionId": REGION, "endpoint": server.endpoint}]),
    }
    # v2 verifies the server's certificate against the default trust store, which OpenSSL takes from
    # SSL_CERT_FILE; its caFilePath is used only for Alibaba's instance gateway domain. The old client
    # does not verify at all (AcsClient(verify=False) in its client builder), so it is given no CA.
    env = {"SSL_CERT_FILE": str(tls.ca)} if library == "v2" else {}
    if route == "env":
        return {**env, **settings}, None
    folder.mkdir(parents=True, exist_ok=True)
    properties = folder / "openkms-secrets.properties"
    lines = "".join(f"{name}={value}\n" for name, value in settings.items())
    properties.write_text(lines, encoding="utf-8")
    return env, str(properties)


def _session(
    library: str, route: str, server: LiveServer, tls: TlsFiles, folder: Path, key: tuple[str, str]
) -> tuple[DriverSession, str | None]:
    env, config_file = _configuration(library, route, server, tls, folder, key)
    return DriverSession(DRIVER, folder, env), config_file


def _wait_for_version(session: DriverSession, name: str, version_id: str) -> dict[str, Any]:
    """Reads `name` until the client serves `version_id` (its refresh), within a generous deadline."""
    deadline = time.monotonic() + REFRESH_DEADLINE_SECONDS
    while True:
        info: dict[str, Any] = session.ok("info", name=name)
        if info["version_id"] == version_id or time.monotonic() > deadline:
            return info
        time.sleep(0.2)


@pytest.mark.parametrize(("library", "route"), CONFIGURATIONS)
def test_fetches_caches_and_refreshes(
    library: str,
    route: str,
    https_server: LiveServer,
    tls: TlsFiles,
    root: KmsCaller,
    secrets: Secrets,
    tmp_path: Path,
) -> None:
    session, config_file = _session(
        library, route, https_server, tls, tmp_path, (ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    )
    with session:
        session.ok("open", library=library, config_file=config_file, ttl_ms={secrets.refreshed: 1000})
        info = session.ok("info", name=secrets.cached)
        assert info == {"name": secrets.cached, "value": "first", "data_type": "text", "version_id": "v1"}
        assert session.ok("value", name=secrets.cached) == "first"
        # A binary secret arrives as GetSecretValue answers it, base64 text.
        blob = session.ok("info", name=secrets.binary)
        assert blob["data_type"] == "binary" and base64.b64decode(blob["value"]) == BINARY
        # Both libraries' get_binary_value hand bytes to bytebuffer's ByteBuffer.wrap, which takes only
        # a bytearray: it fails whatever the server answers.
        assert session.error("binary", name=secrets.binary)["type"] == "TypeError"

        for name in (secrets.cached, secrets.refreshed):
            root.call("PutSecretValue", SecretName=name, VersionId="v2", SecretData="second")
        assert session.ok("value", name=secrets.cached) == "first"  # from the library's cache
        assert session.ok("refresh", name=secrets.cached) is True  # its forced refresh
        assert session.ok("info", name=secrets.cached)["version_id"] == "v2"
        assert session.ok("value", name=secrets.cached) == "second"
        # The one-second TTL: the library fetches the secret again by itself.
        refreshed = _wait_for_version(session, secrets.refreshed, "v2")
        assert (refreshed["version_id"], refreshed["value"]) == ("v2", "second")


@pytest.mark.parametrize(("library", "route"), CONFIGURATIONS)
def test_missing_secret_and_refusal(
    library: str,
    route: str,
    https_server: LiveServer,
    tls: TlsFiles,
    secrets: Secrets,
    outsider: tuple[str, str],
    tmp_path: Path,
) -> None:
    session, config_file = _session(
        library, route, https_server, tls, tmp_path / "root", (ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    )
    with session:
        session.ok("open", library=library, config_file=config_file)
        missing = session.error("info", name=f"app/none-{uuid.uuid4().hex[:8]}")
        assert (missing["code"], missing["status"]) == ("Forbidden.ResourceNotFound", 404)
    session, config_file = _session(library, route, https_server, tls, tmp_path / "outsider", outsider)
    with session:
        session.ok("open", library=library, config_file=config_file)
        refused = session.error("info", name=secrets.cached)
        assert (refused["code"], refused["status"]) == ("Forbidden.NoPermission", 403)


def test_old_client_cannot_read_a_properties_file_on_python_3_11(
    https_server: LiveServer, tls: TlsFiles, tmp_path: Path
) -> None:
    """aliyun-secret-manager-client 0.1.5 opens its `.properties` file with mode 'Ur', which Python 3.11
    no longer accepts: only its environment variables work (docs/secrets.md)."""
    session, config_file = _session(
        "old", "properties", https_server, tls, tmp_path, (ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    )
    with session:
        refused = session.error("open", library="old", config_file=config_file)
        assert refused["type"] == "ValueError" and "invalid mode: 'Ur'" in refused["message"]


def test_v2_verifies_the_certificate_and_ignores_ca_file_path_for_openkms(
    https_server: LiveServer, tls: TlsFiles, secrets: Secrets, tmp_path: Path
) -> None:
    """Without SSL_CERT_FILE, v2 refuses the server's certificate even with caFilePath naming the CA:
    it applies caFilePath only to endpoints of Alibaba's instance gateway domain."""
    region = {"regionId": REGION, "endpoint": https_server.endpoint, "caFilePath": str(tls.ca)}
    env = {
        "credentials_type": "ak",
        "credentials_access_key_id": ACCESS_KEY_ID,
        "credentials_access_secret": ACCESS_KEY_SECRET,
        "cache_client_region_id": json.dumps([region]),
    }
    with DriverSession(DRIVER, tmp_path, env) as session:
        session.ok("open", library="v2")
        refused = session.error("info", name=secrets.cached)
        assert "CERTIFICATE_VERIFY_FAILED" in refused["message"]


# ---- the unified KMS SDK on the OpenAPI path ----------------------------------------------------------

# client: Client(open_api_config=...).get_secret_value_by_shared_endpoint; transfer: TransferClient with
# an OpenAPI Config only; transfer-runtime: TransferClient with an instance's KmsConfig too, the call
# sent to the shared gateway by KmsRuntimeOptions(is_use_kms_share_gateway=True); transfer-api-names:
# the same, by KmsConfig(default_kms_api_names=["GetSecretValue"]).
UNIFIED_ROUTES = ["client", "transfer", "transfer-runtime", "transfer-api-names"]


def _openapi_config(server: LiveServer, tls: TlsFiles, key: tuple[str, str]) -> dict[str, str]:
    return {
        "access_key_id": key[0],
        "access_key_secret": key[1],
        "endpoint": server.endpoint,
        "region_id": REGION,
        "protocol": "https",
        "ca": str(tls.ca),
    }


@pytest.mark.parametrize("route", UNIFIED_ROUTES)
def test_unified_sdk_get_secret_value(
    route: str,
    https_server: LiveServer,
    tls: TlsFiles,
    root: KmsCaller,
    secrets: Secrets,
    outsider: tuple[str, str],
    tmp_path: Path,
) -> None:
    # Where the instance gateway would be: nothing listens there and the KmsConfig has no client key, so
    # a call the SDK routed to the instance would fail (it does, without is_use_kms_share_gateway).
    instance_endpoint = f"127.0.0.1:{free_port()}"
    root_config = _openapi_config(https_server, tls, (ACCESS_KEY_ID, ACCESS_KEY_SECRET))

    def get(config: dict[str, str], **request: str) -> dict[str, Any]:
        return session.ask(
            "unified", route=route, config=config, request=request, instance_endpoint=instance_endpoint
        )

    with DriverSession(DRIVER, tmp_path, {}) as session:
        first = get(root_config, secret_name=secrets.cached)["ok"]
        assert first == {
            "name": secrets.cached,
            "value": "first",
            "data_type": "text",
            "version_id": "v1",
            "stages": ["ACSCurrent"],
            "status": 200,
        }
        blob = get(root_config, secret_name=secrets.binary)["ok"]
        assert blob["data_type"] == "binary" and base64.b64decode(blob["value"]) == BINARY

        root.call("PutSecretValue", SecretName=secrets.cached, VersionId="v2", SecretData="second")
        current = get(root_config, secret_name=secrets.cached)["ok"]
        assert (current["value"], current["version_id"]) == ("second", "v2")
        assert current["stages"] == ["ACSCurrent"]
        previous = get(root_config, secret_name=secrets.cached, version_stage="ACSPrevious")["ok"]
        assert (previous["value"], previous["version_id"], previous["stages"]) == (
            "first",
            "v1",
            ["ACSPrevious"],
        )
        by_id = get(root_config, secret_name=secrets.cached, version_id="v1")["ok"]
        assert (by_id["value"], by_id["stages"]) == ("first", ["ACSPrevious"])

        missing = get(root_config, secret_name=f"app/none-{uuid.uuid4().hex[:8]}")["error"]
        assert (missing["code"], missing["status"]) == ("Forbidden.ResourceNotFound", 404)
        refused = get(_openapi_config(https_server, tls, outsider), secret_name=secrets.cached)["error"]
        assert (refused["code"], refused["status"]) == ("Forbidden.NoPermission", 403)


def test_unified_sdk_routes_get_secret_value_to_an_instance_unless_told(
    https_server: LiveServer, tls: TlsFiles, secrets: Secrets, tmp_path: Path
) -> None:
    """The control for the KmsConfig routes above: without either switch, TransferClient does not reach
    the OpenAPI endpoint for GetSecretValue."""
    with DriverSession(DRIVER, tmp_path, {}) as session:
        answer = session.ask(
            "unified",
            route="transfer-instance",
            config=_openapi_config(https_server, tls, (ACCESS_KEY_ID, ACCESS_KEY_SECRET)),
            request={"secret_name": secrets.cached},
            instance_endpoint=f"127.0.0.1:{free_port()}",
        )
        assert "error" in answer and answer["error"]["code"] is None  # the SDK's own failure, no answer
