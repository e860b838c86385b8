"""A live server receiving Hypothesis-generated requests: signed requests of many actions with
hostile parameter values (so they reach the handlers), and signed requests changed after signing
(so they stop at authentication). Whatever arrives, `/` answers JSON, never a 500, every refusal a
documented code, and the server stays healthy and serves a normal client afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.signers import sign_acs
from tests.fuzz.strategies import deep_json, dumps, json_values, mutated_text, wire_text
from tests.fuzz.support import fuzz_settings, is_documented
from tests.support.raw import signed_params
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer

KMS, RAM, STS = "2016-01-20", "2015-05-01", "2015-04-01"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("fuzz-live") / "data")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(live: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=30) as http:
        yield http


def call(client: httpx.Client, action: str, version: str = KMS, **params: str) -> dict[str, Any]:
    reply = client.post(
        "/", data=signed_params(action, ACCESS_KEY_ID, ACCESS_KEY_SECRET, version=version, **params)
    )
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


@pytest.fixture(scope="module")
def known(client: httpx.Client) -> dict[str, str]:
    """A key, a ciphertext of it and an alias: valid values for the generated requests to start from."""
    instance = call(client, "ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    key_id = call(client, "CreateKey", DKMSInstanceId=instance)["KeyMetadata"]["KeyId"]
    blob = call(client, "Encrypt", KeyId=key_id, Plaintext="fuzz", EncryptionContext='{"a":"b"}')[
        "CiphertextBlob"
    ]
    return {"instance": instance, "key": key_id, "blob": blob}


def _sendable(text: str) -> bool:
    return not any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def value_of(valid: str) -> st.SearchStrategy[str]:
    return st.one_of(
        st.just(valid),
        st.just(valid).flatmap(mutated_text),
        wire_text,
        json_values.map(dumps).filter(lambda s: len(s) < 4000),
        deep_json(3000),
    ).filter(_sendable)


POLICY = dumps(
    {
        "Version": "1",
        "Statement": [
            {"Effect": "Allow", "Action": "kms:*", "Resource": "*", "Principal": {"RAM": ["acs:ram::*:*"]}}
        ],
    }
)
RAM_POLICY = dumps(
    {"Version": "1", "Statement": [{"Effect": "Allow", "Action": ["kms:List*"], "Resource": "*"}]}
)


def actions(known: dict[str, str]) -> list[tuple[str, str, dict[str, str]]]:
    key, blob = known["key"], known["blob"]
    return [
        ("Encrypt", KMS, {"KeyId": key, "Plaintext": "x", "EncryptionContext": '{"a":"b"}'}),
        ("Decrypt", KMS, {"CiphertextBlob": blob, "EncryptionContext": '{"a":"b"}'}),
        (
            "ReEncrypt",
            KMS,
            {"CiphertextBlob": blob, "DestinationKeyId": key, "SourceEncryptionContext": '{"a":"b"}'},
        ),
        ("GenerateDataKey", KMS, {"KeyId": key, "NumberOfBytes": "32", "KeySpec": "AES_256"}),
        (
            "ExportDataKey",
            KMS,
            {
                "CiphertextBlob": blob,
                "PublicKeyBlob": "AAAA",
                "WrappingAlgorithm": "RSAES_OAEP_SHA_256",
                "WrappingKeySpec": "RSA_2048",
            },
        ),
        ("DescribeKey", KMS, {"KeyId": "alias/fuzz"}),
        ("ListKeys", KMS, {"Filters": '[{"Key":"KeyState","Values":["Enabled"]}]', "PageSize": "10"}),
        ("TagResource", KMS, {"KeyId": key, "Tags": '[{"TagKey":"team","TagValue":"a"}]'}),
        ("UntagResource", KMS, {"KeyId": key, "TagKeys": '["team"]'}),
        (
            "TagResources",
            KMS,
            {"ResourceType": "key", "ResourceId.1": key, "Tag.1.Key": "env", "Tag.1.Value": "x"},
        ),
        ("CreateAlias", KMS, {"KeyId": key, "AliasName": "alias/fuzz"}),
        (
            "UpdateRotationPolicy",
            KMS,
            {"KeyId": key, "EnableAutomaticRotation": "true", "RotationInterval": "30d"},
        ),
        ("SetKeyPolicy", KMS, {"KeyId": key, "PolicyName": "default", "Policy": POLICY}),
        (
            "CreateKey",
            KMS,
            {"DKMSInstanceId": known["instance"], "Description": "d", "KeySpec": "Aliyun_AES_256"},
        ),
        ("CreateUser", RAM, {"UserName": "fuzz-user"}),
        ("CreatePolicy", RAM, {"PolicyName": "fuzz-policy", "PolicyDocument": RAM_POLICY}),
        ("AssumeRole", STS, {"RoleArn": "acs:ram::123:role/admin", "RoleSessionName": "s1"}),
        ("NoSuchAction", KMS, {"X": "1"}),
    ]


def check_reply(reply: httpx.Response) -> None:
    assert reply.status_code < 500, reply.text
    assert reply.headers["content-type"].startswith("application/json"), reply.text
    body = reply.json()
    assert isinstance(body, dict) and body.get("RequestId")
    if reply.status_code != 200:
        assert body["HttpStatus"] == reply.status_code
        assert is_documented(body["Code"]), body


@st.composite
def request_parts(draw: st.DrawFn, known: dict[str, str]) -> tuple[str, dict[str, str], str]:
    action, version, valid = draw(st.sampled_from(actions(known)))
    params = dict(valid)
    for name in draw(st.lists(st.sampled_from(sorted(valid)), max_size=len(valid), unique=True)):
        params[name] = draw(value_of(valid[name]))
    if draw(st.integers(0, 5)) == 0:
        params[draw(wire_text.filter(lambda n: n not in ("Format", "Signature")))] = draw(wire_text)
    signed = signed_params(
        action, ACCESS_KEY_ID, ACCESS_KEY_SECRET, version=version, nonce=uuid.uuid4().hex, **params
    )
    if draw(st.integers(0, 4)) == 0:  # changed after signing: must stop at authentication
        name = draw(st.sampled_from(sorted(signed)))
        if name != "Format":
            signed[name] = draw(value_of(signed[name]))
    return draw(st.sampled_from(["form", "query", "get"])), signed, action


_LONGEST_QUERY = 60_000


@fuzz_settings(300)
@given(st.data())
def test_hostile_requests_never_break_the_server(
    client: httpx.Client, known: dict[str, str], data: st.DataObject
) -> None:
    how, params, _ = data.draw(request_parts(known))
    if len(urlencode(params)) > _LONGEST_QUERY:
        how = "form"  # httpx builds no URL past 64 KiB (the server would answer 431 anyway)
    if how == "form":
        reply = client.post("/", data=params)
    elif how == "query":
        reply = client.post("/", params=params)
    else:
        reply = client.get("/", params=params)
    check_reply(reply)


def test_the_server_is_healthy_after_the_fuzzing(
    client: httpx.Client, live: LiveServer, known: dict[str, str]
) -> None:
    assert client.get("/healthz").json()["status"] == "ready"
    key_id = call(client, "CreateKey", DKMSInstanceId=known["instance"])["KeyMetadata"]["KeyId"]
    blob = call(client, "Encrypt", KeyId=key_id, Plaintext="after")["CiphertextBlob"]
    assert call(client, "Decrypt", CiphertextBlob=blob)["Plaintext"] == "after"
    assert "Traceback" not in live.log()


def test_deep_encryption_context_is_a_client_error(client: httpx.Client, known: dict[str, str]) -> None:
    context = "[" * 300 + "]" * 300  # orjson reads it, then could not write it back: was InternalFailure
    params = signed_params(
        "Encrypt",
        ACCESS_KEY_ID,
        ACCESS_KEY_SECRET,
        KeyId=known["key"],
        Plaintext="x",
        EncryptionContext=context,
    )
    reply = client.post("/", data=params)
    check_reply(reply)
    assert reply.json()["Code"] == "InvalidParameter"


def test_a_nonce_padded_after_signing_is_the_same_nonce(client: httpx.Client, live: LiveServer) -> None:
    """ACS3 signs each header value stripped; a replay with the nonce padded by a no-break space must
    meet the replay cache, not pass as a new nonce."""
    headers = {
        "host": live.endpoint,
        "x-acs-action": "ListKeys",
        "x-acs-version": KMS,
        "x-acs-date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "x-acs-signature-nonce": uuid.uuid4().hex,
    }
    wire = sign_acs("ACS3-HMAC-SHA256", ACCESS_KEY_ID, ACCESS_KEY_SECRET, "GET", {}, headers, b"")
    sent = [(name.encode(), value.encode("latin-1")) for name, value in wire.headers]
    assert client.get("/", headers=sent).status_code == 200
    padded = [(n, v + b"\xa0" if n == b"x-acs-signature-nonce" else v) for n, v in sent]
    replay = client.get("/", headers=padded)
    check_reply(replay)
    assert replay.json()["Code"] == "SignatureNonceUsed"
