"""Domain error class -> (HTTP status, Alibaba Code). One table; the most specific class wins.

Never choose a status by matching message text. Every row has a test (tests/unit/test_wire_errors.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from openkms import errors


@dataclass(frozen=True, slots=True)
class WireError:
    status: int
    code: str
    message: str
    access_denied_detail: dict[str, str] | None = None


INTERNAL_FAILURE = WireError(500, "InternalFailure", "Internal Failure.")

# Ordered most specific first only for readability; lookup walks each class's MRO.
WIRE_ERRORS: dict[type[errors.OpenKMSError], tuple[int, str]] = {
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


def to_wire(error: BaseException) -> WireError:
    """The wire form of any exception; anything unknown is an InternalFailure with no detail."""
    if isinstance(error, errors.OpenKMSError):
        for cls in type(error).__mro__:
            row = WIRE_ERRORS.get(cls)
            if row is not None:
                status, code = row
                if status >= 500 and not isinstance(error, (errors.Unavailable, errors.KeyMaterialLost)):
                    return INTERNAL_FAILURE
                if isinstance(error, errors.MissingParameter) and error.parameter:
                    return WireError(
                        status,
                        f"Missing{error.parameter}",
                        f"{error.parameter} is mandatory for this action.",
                    )
                if isinstance(error, errors.EntityError) and error.entity:
                    return WireError(status, f"{code}.{error.entity}", error.message)
                if isinstance(error, errors.AccessDenied) and error.detail:
                    return WireError(status, code, error.message, dict(error.detail))
                return WireError(status, code, error.message)
    return INTERNAL_FAILURE
