"""Every row of the wire-error table, and the fallbacks."""

from __future__ import annotations

import pytest

from openkms import errors
from openkms.api.wire_errors import INTERNAL_FAILURE, WIRE_ERRORS, to_wire

EXPECTED: dict[type[errors.OpenKMSError], tuple[int, str]] = {
    errors.MissingParameter: (400, "MissingParameter"),
    errors.InvalidCiphertext: (400, "Rejected.InvalidCiphertext"),
    errors.NotADataKey: (400, "UnsupportedOperation.NotDataKey"),
    errors.UnsupportedOperation: (400, "UnsupportedOperation"),
    errors.UnsupportedVersion: (400, "InvalidVersion"),
    errors.RequestTooLarge: (413, "EntityTooLarge"),
    errors.MalformedPolicy: (400, "MalformedPolicyDocument"),
    errors.InvalidImportToken: (400, "InvalidImportToken"),
    errors.ImportTokenExpired: (400, "ExpiredImportToken"),
    errors.IncorrectKeyMaterial: (400, "InvalidKeyMaterial"),
    errors.PasswordPolicyViolation: (400, "InvalidParameter.Password"),
    errors.IncorrectPassword: (400, "InvalidParameter.OldPassword"),
    errors.InvalidArgument: (400, "InvalidParameter"),
    errors.KeyNotFound: (404, "Forbidden.KeyNotFound"),
    errors.KeyVersionNotFound: (404, "Forbidden.KeyVersionNotFound"),
    errors.AliasNotFound: (404, "Forbidden.AliasNotFound"),
    errors.InstanceNotFound: (404, "Forbidden.InstanceNotFound"),
    errors.UnknownAction: (404, "InvalidAction.NotFound"),
    errors.NotFound: (404, "Forbidden.ResourceNotFound"),
    errors.KeyDisabled: (400, "Rejected.Disabled"),
    errors.DeletionProtected: (400, "Rejected.DeletionProtection"),
    errors.InvalidKeyState: (400, "Forbidden.KeyStateError"),
    errors.SecretInDeleteWindow: (409, "Rejected.ResourceInDeleteWindow"),
    errors.Conflict: (400, "Rejected.ResourceExist"),
    errors.QuotaExceeded: (400, "Rejected.LimitExceeded"),
    errors.UnknownAccessKey: (404, "InvalidAccessKeyId.NotFound"),
    errors.InvalidSecurityToken: (400, "InvalidSecurityToken.Malformed"),
    errors.SecurityTokenExpired: (400, "InvalidSecurityToken.Expired"),
    errors.EntityNotExist: (404, "EntityNotExist"),
    errors.EntityAlreadyExists: (409, "EntityAlreadyExists"),
    errors.DeleteConflict: (409, "DeleteConflict"),
    errors.EntityLimitExceeded: (409, "LimitExceeded"),
    errors.InstanceUnauthorized: (401, "Unauthorized"),
    errors.InstanceInvalidParam: (400, "InvalidParam"),
    errors.SignatureMismatch: (400, "SignatureDoesNotMatch"),
    errors.IncompleteSignature: (400, "IncompleteSignature"),
    errors.InvalidTimestamp: (400, "IllegalTimestamp"),
    errors.ExpiredTimestamp: (400, "InvalidTimeStamp.Expired"),
    errors.NonceReused: (400, "SignatureNonceUsed"),
    errors.SignInLocked: (403, "InvalidSignIn.Locked"),
    errors.SignInFailed: (401, "InvalidSignIn"),
    errors.AuthenticationError: (400, "IncompleteSignature"),
    errors.AccessDenied: (403, "Forbidden.NoPermission"),
    errors.DryRunPassed: (400, "DryRunOperation"),
    errors.Throttled: (429, "Rejected.Throttling"),
    errors.Sealed: (503, "ServiceUnavailableTemporary"),
    errors.KeyStoreUnavailable: (503, "Rejected.KeyStoreUnavailable"),
    errors.RotationFailed: (503, "Rejected.RotationFailed"),
    errors.ExternalKeyError: (400, "Rejected.ExternalKey"),
    errors.KeyMaterialLost: (500, "Rejected.KeyMaterialLost"),
    errors.Unavailable: (503, "ServiceUnavailableTemporary"),
    errors.AuditUnavailable: (500, "InternalFailure"),
    errors.InternalError: (500, "InternalFailure"),
}


def _instance(cls: type[errors.OpenKMSError]) -> errors.OpenKMSError:
    if cls is errors.SignatureMismatch:
        return errors.SignatureMismatch("POST&%2F&x")
    if issubclass(cls, errors.EntityError):
        return cls("")
    if cls is errors.MissingParameter:
        return errors.MissingParameter("")  # no parameter name: the generic code
    return cls()


def test_the_table_is_exactly_the_expected_rows() -> None:
    assert WIRE_ERRORS == EXPECTED


@pytest.mark.parametrize(("cls", "row"), list(EXPECTED.items()), ids=lambda v: getattr(v, "__name__", str(v)))
def test_each_row_maps_its_class(cls: type[errors.OpenKMSError], row: tuple[int, str]) -> None:
    wire = to_wire(_instance(cls))
    assert (wire.status, wire.code) == row
    if row[0] == 500 and cls is not errors.KeyMaterialLost:  # reported as itself: the operator must act
        assert wire == INTERNAL_FAILURE


def test_missing_parameter_names_the_parameter() -> None:
    wire = to_wire(errors.MissingParameter("KeyId"))
    assert (wire.status, wire.code, wire.message) == (
        400,
        "MissingKeyId",
        "KeyId is mandatory for this action.",
    )


def test_signature_mismatch_message_ends_with_the_string_to_sign() -> None:
    wire = to_wire(errors.SignatureMismatch("POST&%2F&Action%3DX"))
    assert wire.message.endswith(":POST&%2F&Action%3DX")


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("boom /etc/secret"),
        errors.StorageIntegrityError(),
        errors.RootOfTrustError("x"),
        KeyError("k"),
    ],
)
def test_anything_else_is_an_internal_failure_without_detail(error: BaseException) -> None:
    assert to_wire(error) == INTERNAL_FAILURE


def test_unavailable_keeps_its_own_message() -> None:
    wire = to_wire(errors.Sealed())
    assert wire.status == 503 and "sealed" in wire.message


def test_entity_errors_name_their_entity() -> None:
    wire = to_wire(errors.EntityNotExist("User", "The user alice does not exist."))
    assert (wire.status, wire.code, wire.message) == (
        404,
        "EntityNotExist.User",
        "The user alice does not exist.",
    )
    assert to_wire(errors.DeleteConflict("User.AccessKey")).code == "DeleteConflict.User.AccessKey"


def test_access_denied_carries_its_detail() -> None:
    wire = to_wire(errors.AccessDenied("no", detail={"AuthAction": "kms:Encrypt"}))
    assert wire.access_denied_detail == {"AuthAction": "kms:Encrypt"}
