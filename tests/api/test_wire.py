"""The wire itself: transports, encodings, signatures, timestamps, nonces, formats, error shapes."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from urllib.parse import quote

import pytest

from tests.support.raw import send, signed_params
from tests.support.sdk import KmsCaller, KmsError
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer

ERROR_FIELDS = {"RequestId", "HostId", "Code", "Message", "Recommend"}


def _call(server: LiveServer, action: str, *, method: str = "POST", as_form: bool = True, **params: str):
    return send(
        server.url,
        signed_params(action, ACCESS_KEY_ID, ACCESS_KEY_SECRET, method=method, **params),
        method=method,
        as_form=as_form,
    )


@pytest.mark.parametrize(("method", "as_form"), [("POST", True), ("POST", False), ("GET", False)])
def test_transports_post_form_post_query_and_get(server: LiveServer, method: str, as_form: bool) -> None:
    response = _call(server, "DescribeRegions", method=method, as_form=as_form)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert response.headers["x-acs-request-id"] == body["RequestId"]
    assert body["Regions"]["Region"] == [{"RegionId": "cn-hangzhou"}]


def test_unknown_access_key(server: LiveServer) -> None:
    params = signed_params("DescribeRegions", "LTAInobodyHasThisKey0000", "whatever")
    response = send(server.url, params)
    assert response.status_code == 404
    assert response.json()["Code"] == "InvalidAccessKeyId.NotFound"
    assert set(response.json()) >= ERROR_FIELDS


def test_bad_signature_names_the_server_string_to_sign(server: LiveServer) -> None:
    params = signed_params("DescribeRegions", ACCESS_KEY_ID, "the-wrong-secret")
    response = send(server.url, params)
    body = response.json()
    assert (response.status_code, body["Code"]) == (400, "SignatureDoesNotMatch")
    canonical = "&".join(
        f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in sorted(params.items()) if k != "Signature"
    )
    assert body["Message"].endswith(":POST&%2F&" + quote(canonical, safe="~"))
    assert ACCESS_KEY_SECRET not in response.text


def test_legacy_sdk_recognises_a_wrong_secret(server: LiveServer) -> None:
    caller = KmsCaller("legacy", server.endpoint, ACCESS_KEY_ID, "wrong-secret")
    with pytest.raises(KmsError) as caught:
        caller.call("DescribeRegions")
    assert caught.value.code in {"InvalidAccessKeySecret", "SignatureDoesNotMatch"}


def test_tampered_parameter_fails_the_signature(server: LiveServer) -> None:
    params = signed_params("DescribeKey", ACCESS_KEY_ID, ACCESS_KEY_SECRET, KeyId="key-a")
    params["KeyId"] = "key-b"
    response = send(server.url, params)
    assert (response.status_code, response.json()["Code"]) == (400, "SignatureDoesNotMatch")


@pytest.mark.parametrize("skew", [timedelta(minutes=-16), timedelta(minutes=16)])
def test_timestamp_outside_fifteen_minutes(server: LiveServer, skew: timedelta) -> None:
    response = send(server.url, signed_params("DescribeRegions", ACCESS_KEY_ID, ACCESS_KEY_SECRET, skew=skew))
    assert (response.status_code, response.json()["Code"]) == (400, "InvalidTimeStamp.Expired")


def test_timestamp_within_window_is_accepted(server: LiveServer) -> None:
    skewed = signed_params("DescribeRegions", ACCESS_KEY_ID, ACCESS_KEY_SECRET, skew=timedelta(minutes=-14))
    assert send(server.url, skewed).status_code == 200


def test_missing_or_garbled_timestamp(server: LiveServer) -> None:
    params = signed_params("DescribeRegions", ACCESS_KEY_ID, ACCESS_KEY_SECRET, Timestamp="yesterday")
    response = send(server.url, params)
    assert (response.status_code, response.json()["Code"]) == (400, "IllegalTimestamp")


def test_replayed_nonce_is_refused_and_changes_nothing(
    server: LiveServer, kms: KmsCaller, instance_id: str
) -> None:
    before = kms.call("ListKeys", PageSize=1)["TotalCount"]
    params = signed_params("CreateKey", ACCESS_KEY_ID, ACCESS_KEY_SECRET, DKMSInstanceId=instance_id)
    assert send(server.url, params).status_code == 200
    replay = send(server.url, params)
    assert (replay.status_code, replay.json()["Code"]) == (400, "SignatureNonceUsed")
    assert kms.call("ListKeys", PageSize=1)["TotalCount"] == before + 1


def test_same_nonce_with_a_failed_signature_is_not_burnt(server: LiveServer) -> None:
    nonce = uuid.uuid4().hex
    forged = signed_params("DescribeRegions", ACCESS_KEY_ID, "wrong", nonce=nonce)
    assert send(server.url, forged).status_code == 400
    genuine = signed_params("DescribeRegions", ACCESS_KEY_ID, ACCESS_KEY_SECRET, nonce=nonce)
    assert send(server.url, genuine).status_code == 200


def test_xml_format(server: LiveServer) -> None:
    response = _call(server, "DescribeRegions", Format="XML")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert re.search(
        r"<DescribeRegionsResponse><RequestId>[0-9A-F-]+</RequestId><Regions><Region>"
        r"<RegionId>cn-hangzhou</RegionId></Region></Regions></DescribeRegionsResponse>",
        response.text,
    )
    error = _call(server, "DescribeKey", Format="XML", KeyId="key-none")
    assert error.status_code == 404
    assert "<Code>Forbidden.KeyNotFound</Code>" in error.text


def test_unknown_action_and_version(server: LiveServer) -> None:
    response = _call(server, "MakeCoffee")
    assert (response.status_code, response.json()["Code"]) == (404, "InvalidAction.NotFound")
    response = _call(server, "DescribeRegions", version="2099-01-01")
    assert (response.status_code, response.json()["Code"]) == (400, "InvalidVersion")


def test_parameter_given_twice_is_refused(server: LiveServer) -> None:
    params = signed_params("DescribeKey", ACCESS_KEY_ID, ACCESS_KEY_SECRET, KeyId="key-a")
    import httpx

    response = httpx.post(server.url + "/?KeyId=key-b", data=params, timeout=30)
    assert (response.status_code, response.json()["Code"]) == (400, "InvalidParameter")


@pytest.mark.parametrize(("yes", "no"), [("true", "false"), ("TRUE", "FALSE"), ("True", "False")])
def test_booleans_are_case_insensitive(server: LiveServer, key_id: str, yes: str, no: str) -> None:
    response = _call(server, "Encrypt", KeyId=key_id, Plaintext="x", DryRun=yes)
    assert (response.status_code, response.json()["Code"]) == (400, "DryRunOperation")
    response = _call(server, "Encrypt", KeyId=key_id, Plaintext="x", DryRun=no)
    assert response.status_code == 200, response.text


def test_missing_signature_and_wrong_method(server: LiveServer) -> None:
    params = signed_params("DescribeRegions", ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    del params["Signature"]
    response = send(server.url, params)
    assert (response.status_code, response.json()["Code"]) == (400, "MissingSignature")
    import httpx

    response = httpx.put(server.url + "/", timeout=30)
    assert response.status_code == 404
    assert set(response.json()) >= ERROR_FIELDS


def test_unknown_path_is_not_the_rpc_endpoint(server: LiveServer) -> None:
    import httpx

    assert httpx.get(server.url + "/nothing-here", timeout=30).status_code == 404
    health = httpx.get(server.url + "/healthz", timeout=30)
    assert (health.status_code, health.json()["status"]) == (200, "ready")


def test_unknown_parameter_is_refused_and_changes_nothing(
    server: LiveServer, kms: KmsCaller, instance_id: str
) -> None:
    before = kms.call("ListKeys", PageSize=1)["TotalCount"]
    response = _call(server, "CreateKey", DKMSInstanceId=instance_id, Colour="blue")
    body = response.json()
    assert (response.status_code, body["Code"]) == (400, "InvalidParameter")
    assert "Colour" in body["Message"]
    assert kms.call("ListKeys", PageSize=1)["TotalCount"] == before


def test_legacy_common_parameters_are_accepted(server: LiveServer) -> None:
    response = _call(server, "DescribeRegions", RegionId="cn-hangzhou", SignatureType="")
    assert response.status_code == 200, response.text
    response = _call(server, "DescribeRegions", RegionId="eu-nowhere-1")
    assert (response.status_code, response.json()["Code"]) == (400, "InvalidParameter")
