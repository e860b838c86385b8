"""Fair limits per tenant (issue 13, item 2), on a live server with two main accounts: one account
flooding no-op and real requests is throttled (429 Rejected.Throttling) and changes nothing, while
the other account's requests all succeed; a throttled request spends no nonce; an account holds a
bounded share of the replay cache; a timestamp too far ahead is refused; an unknown action spends
no nonce."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from openkms.api.instance import kms_instance_pb2 as pb
from tests.api.test_identities import create_account
from tests.api.test_instance_wire import KEY_USER, PASSWORD, error_of, post, signed
from tests.support.raw import send, signed_params
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer

# Low limits, with a 10 s burst so the quiet account's few calls always fit in its own budget.
LOW_LIMITS = {
    "OPENKMS_RATE_CRYPTO_PER_ACCOUNT": "2",
    "OPENKMS_RATE_MANAGEMENT_PER_ACCOUNT": "1",
    "OPENKMS_RATE_RAM_PER_ACCOUNT": "1",
    "OPENKMS_RATE_CRYPTO_PER_ACCESS_KEY": "2",
    "OPENKMS_RATE_MANAGEMENT_PER_ACCESS_KEY": "1",
    "OPENKMS_RATE_RAM_PER_ACCESS_KEY": "1",
    "OPENKMS_RATE_BURST_SECONDS": "10",
}


class Tenant:
    """A main account calling with raw signed requests (so a test can resend one as it was)."""

    def __init__(self, server: LiveServer, access_key_id: str, secret: str) -> None:
        self.server, self.access_key_id, self.secret = server, access_key_id, secret

    def sign(self, action: str, **params: str) -> dict[str, str]:
        return signed_params(action, self.access_key_id, self.secret, **params)

    def send(self, signed: dict[str, str]) -> httpx.Response:
        return send(self.server.url, signed)

    def call(self, action: str, **params: str) -> httpx.Response:
        return self.send(self.sign(action, **params))

    def ok(self, action: str, **params: str) -> dict[str, object]:
        response = self.call(action, **params)
        assert response.status_code == 200, response.text
        document: dict[str, object] = response.json()
        return document

    def new_key(self) -> str:
        instances = self.ok("ListKmsInstances")["KmsInstances"]
        instance = instances["KmsInstance"][0]["KmsInstanceId"]  # type: ignore[index]
        return str(self.ok("CreateKey", DKMSInstanceId=instance)["KeyMetadata"]["KeyId"])  # type: ignore[index]

    def key_count(self) -> int:
        return int(self.ok("ListKeys", PageSize="100")["TotalCount"])  # type: ignore[arg-type]


def _tenant(server: LiveServer) -> Tenant:
    account = create_account(server)
    return Tenant(server, account["AccessKeyId"], account["AccessKeySecret"])


def _throttled(response: httpx.Response) -> bool:
    if response.status_code != 429:
        return False
    assert response.json()["Code"] == "Rejected.Throttling"
    return True


def _until_admitted(send_once: object, limit_seconds: float = 60.0) -> httpx.Response:
    """Resend until the bucket has refilled (polling, not a timed assertion)."""
    deadline = time.monotonic() + limit_seconds
    while True:
        response = send_once()  # type: ignore[operator]
        if response.status_code != 429 or time.monotonic() > deadline:
            return response  # type: ignore[no-any-return]
        time.sleep(0.5)


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("limited") / "data", extra_env=LOW_LIMITS)
    live.start()
    yield live
    live.stop()


def test_a_flooding_account_is_throttled_and_changes_nothing_while_another_is_served(
    limited: LiveServer,
) -> None:
    noisy, quiet = _tenant(limited), _tenant(limited)
    noisy_key, quiet_key = noisy.new_key(), quiet.new_key()
    keys_before = _until_admitted(lambda: noisy.call("ListKeys", PageSize="100")).json()["TotalCount"]

    quiet_answers = []
    flood: list[httpx.Response] = []
    for round_number in range(4):
        # No-ops: an unknown action, an action with a parameter it does not take.
        flood += [noisy.call("NoSuchAction") for _ in range(10)]
        flood += [noisy.call("Encrypt", KeyId=noisy_key, Plaintext="x", Colour="blue") for _ in range(10)]
        # Real requests: Encrypt, and CreateKey (management).
        flood += [noisy.call("Encrypt", KeyId=noisy_key, Plaintext="secret") for _ in range(10)]
        creations = [noisy.call("CreateKey") for _ in range(5)]
        flood += creations
        # The other account, in the same period, well inside its own budget.
        quiet_answers.append(quiet.call("Encrypt", KeyId=quiet_key, Plaintext=f"hello {round_number}"))
        quiet_answers.append(quiet.call("DescribeKey", KeyId=quiet_key))

    assert all(answer.status_code == 200 for answer in quiet_answers), [a.text for a in quiet_answers]
    assert sum(_throttled(response) for response in flood) > len(flood) // 2
    real_encrypts = [flood[35 * n + 20 : 35 * n + 30] for n in range(4)]
    assert any(_throttled(response) for group in real_encrypts for response in group)
    # Nothing a throttled CreateKey asked for was made.
    made = sum(1 for response in flood if response.status_code == 200 and "KeyMetadata" in response.json())
    after = _until_admitted(lambda: noisy.call("ListKeys", PageSize="100"))
    assert after.status_code == 200
    assert after.json()["TotalCount"] == keys_before + made


def test_a_throttled_request_spends_no_nonce(limited: LiveServer) -> None:
    tenant = _tenant(limited)
    # Empty the management bucket (10 tokens), then sign one request and send it until it is admitted.
    assert any(_throttled(tenant.call("DescribeRegions")) for _ in range(40))
    signed = tenant.sign("DescribeRegions")
    assert _throttled(tenant.send(signed))
    assert _until_admitted(lambda: tenant.send(signed)).status_code == 200
    replayed = _until_admitted(lambda: tenant.send(signed))
    assert (replayed.status_code, replayed.json()["Code"]) == (400, "SignatureNonceUsed")


def test_an_unsigned_request_naming_an_access_key_costs_its_owner_nothing(limited: LiveServer) -> None:
    victim = _tenant(limited)
    for _ in range(30):
        forged = victim.sign("DescribeRegions")
        forged["Signature"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAA="
        assert victim.send(forged).json()["Code"] == "SignatureDoesNotMatch"
    assert victim.call("DescribeRegions").status_code == 200


def test_an_unknown_action_spends_no_nonce(limited: LiveServer) -> None:
    tenant = _tenant(limited)
    nonce = uuid.uuid4().hex
    unknown = tenant.send(tenant.sign("NoSuchAction", nonce=nonce))
    assert (unknown.status_code, unknown.json()["Code"]) == (404, "InvalidAction.NotFound")
    other_version = tenant.send(tenant.sign("DescribeRegions", nonce=nonce, version="2099-01-01"))
    assert other_version.json()["Code"] == "InvalidVersion"
    assert tenant.send(tenant.sign("DescribeRegions", nonce=nonce)).status_code == 200


def test_the_instance_api_charges_the_same_buckets(limited: LiveServer) -> None:
    """A client key flooding AdvanceEncrypt is throttled like an access key (the account's and the
    client key's crypto buckets), answered as a protobuf Error; a forged signature costs nothing."""
    tenant = _tenant(limited)

    def ok(action: str, **params: str) -> dict[str, Any]:
        response = _until_admitted(lambda: tenant.call(action, **params))
        assert response.status_code == 200, response.text
        document: dict[str, Any] = response.json()
        return document

    instance = ok("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    key_id = ok("CreateKey", DKMSInstanceId=instance)["KeyMetadata"]["KeyId"]
    suffix = uuid.uuid4().hex[:8]
    ok("CreateNetworkRule", Name=f"n-{suffix}", Type="Private", SourcePrivateIp='["127.0.0.1"]')
    ok(
        "CreatePolicy",
        Name=f"p-{suffix}",
        KmsInstance=instance,
        Permissions=json.dumps([KEY_USER]),
        Resources='["key/*"]',
        AccessControlRules=json.dumps({"NetworkRules": [f"n-{suffix}"]}),
    )
    ok("CreateApplicationAccessPoint", Name=f"a-{suffix}", Policies=f'["p-{suffix}"]')
    made = ok("CreateClientKey", AapName=f"a-{suffix}", Password=PASSWORD)
    private, _, _ = pkcs12.load_key_and_certificates(
        base64.b64decode(made["PrivateKeyData"]), PASSWORD.encode()
    )
    assert isinstance(private, rsa.RSAPrivateKey)
    client_key_id = str(made["ClientKeyId"])
    body = pb.AdvanceEncryptRequest(KeyId=key_id, Plaintext=b"x").SerializeToString()

    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for _ in range(30):
        forged = post(limited, signed(client_key_id, forger, "AdvanceEncrypt", body), body)
        assert error_of(forged)[:2] == (400, "InvalidParam")
    first = post(limited, signed(client_key_id, private, "AdvanceEncrypt", body), body)
    assert first.status_code == 200  # the forgeries took no token

    answers = [post(limited, signed(client_key_id, private, "AdvanceEncrypt", body), body) for _ in range(60)]
    throttled = [answer for answer in answers if answer.status_code != 200]
    assert throttled and len(throttled) < len(answers)
    assert {error_of(answer)[:2] for answer in throttled} == {(429, "Rejected.Throttling")}


@pytest.mark.parametrize(("minutes", "status"), [(4, 200), (6, 400), (-14, 200)])
def test_a_timestamp_ahead_by_more_than_the_skew_is_refused(
    limited: LiveServer, minutes: int, status: int
) -> None:
    tenant = _tenant(limited)
    response = tenant.send(
        signed_params("DescribeRegions", tenant.access_key_id, tenant.secret, skew=timedelta(minutes=minutes))
    )
    assert response.status_code == status, response.text
    if status == 400:
        assert response.json()["Code"] == "InvalidTimeStamp.Expired"


def test_an_account_over_its_replay_cache_share_is_throttled_while_another_gets_through(
    tmp_path: Path,
) -> None:
    # 65,536 slots (tests/support/server.py) x 0.0005 = 32 live nonces per account; no rate limits.
    unlimited = {name: "0" for name in LOW_LIMITS if name != "OPENKMS_RATE_BURST_SECONDS"}
    live = LiveServer(tmp_path / "data", extra_env={**unlimited, "OPENKMS_NONCE_ACCOUNT_SHARE": "0.0005"})
    live.start()
    try:
        root = Tenant(live, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
        other = _tenant(live)
        answers = [root.call("DescribeRegions") for _ in range(40)]
        assert [a.status_code for a in answers[:30]] == [200] * 30
        assert any(_throttled(answer) for answer in answers[30:])
        assert [other.call("DescribeRegions").status_code for _ in range(20)] == [200] * 20
    finally:
        live.stop()
