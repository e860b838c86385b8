"""The domain error hierarchy. No wire codes here: `api/wire_errors.py` maps each class to the wire.

    OpenKMSError
    ├── InvalidArgument            a parameter value breaks a rule
    │   ├── MissingParameter       a required parameter is absent
    │   ├── InvalidCiphertext      a blob that does not decrypt (tampered, moved, wrong context)
    │   ├── SignatureInvalid       a signature does not verify (AsymmetricVerify answers false instead)
    │   ├── UnsupportedOperation   valid request, not supported for this key or instance
    │   │   └── NotADataKey        ExportDataKey of a blob without the data-key mark (an Encrypt result)
    │   ├── InvalidImportToken     an ImportToken that is forged, unknown or for another key
    │   ├── ImportTokenExpired     an authentic ImportToken past its TokenExpireTime
    │   ├── IncorrectKeyMaterial   imported material that does not unwrap, fit the spec, or match
    │   ├── MalformedPolicy        a policy document that does not parse or breaks a rule
    │   ├── PasswordPolicyViolation a new password breaks the password rules
    │   ├── IncorrectPassword      ChangePassword's OldPassword is not the current password
    │   ├── UnsupportedVersion     an API Version this server does not serve
    │   └── RequestTooLarge        a request body past the server's size cap (refused unread)
    ├── NotFound
    │   ├── KeyNotFound
    │   ├── KeyVersionNotFound
    │   ├── AliasNotFound
    │   ├── InstanceNotFound
    │   ├── SecretNotFound         no such secret, version or stage (Forbidden.ResourceNotFound)
    │   └── UnknownAction          an Action the API does not have
    ├── InvalidKeyState            the key's state forbids the operation (pending deletion, ...)
    │   ├── KeyDisabled            the key is disabled
    │   └── DeletionProtected      deletion protection is on
    ├── Conflict                   the request collides with existing state (second customer master key, ...)
    │   └── SecretInDeleteWindow   the secret waits for deletion: only RestoreSecret and reads of metadata
    ├── QuotaExceeded
    ├── EntityError                a RAM entity (user, role, policy, access key) rule; names the entity
    │   ├── EntityNotExist
    │   ├── EntityAlreadyExists
    │   ├── DeleteConflict         the entity is still in use (attachments, access keys)
    │   └── EntityLimitExceeded
    ├── AuthenticationError        who is calling could not be established
    │   ├── UnknownAccessKey
    │   ├── SignatureMismatch
    │   ├── IncompleteSignature
    │   ├── InvalidTimestamp
    │   ├── ExpiredTimestamp
    │   ├── SecurityTokenExpired   an STS token past its expiry
    │   ├── InvalidSecurityToken   an STS token that is forged or malformed
    │   ├── NonceReused
    │   ├── InstanceUnauthorized   the instance API: no client key by that id
    │   ├── InstanceInvalidParam   the instance API: a bad date, body digest or signature
    │   └── SignInFailed           a console sign-in name and password that do not sign in
    │       └── SignInLocked       too many failed sign-ins: the name is locked for a while
    ├── AccessDenied               authenticated, not allowed
    ├── DryRunPassed               DryRun=true and every check passed: nothing was done
    ├── Throttled                  over a request-rate limit or a share of the replay cache
    ├── InternalError              an unexpected server-side fault (answered InternalFailure)
    ├── Unavailable                the service cannot answer now
    │   ├── Sealed                 the root of trust is not loaded
    │   ├── LeaseLost              a jobs step ran under a lease its process no longer holds
    │   ├── KeyStoreUnavailable    a key's HSM or external key manager cannot be reached now
    │   └── RotationFailed         a managed secret's database refused or could not be reached
    ├── ExternalKeyError           the external key manager refused a key (not found, disabled, wrong kind)
    ├── KeyMaterialLost            the backend that held a key's material no longer has it
    ├── AuditUnavailable           an audit record could not be written (fail closed)
    ├── RootOfTrustError           the root key cannot be loaded or does not open the keyring (unseal)
    └── StorageIntegrityError      stored key material or a keyring term failed its integrity check

Messages are written for the caller: they never contain key material, secrets or internal paths.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from openkms.resource import Resource


class OpenKMSError(Exception):
    """Base of every error a request can end in."""

    default_message = "The request failed."
    # The resource the failed request was about, once known (for its audit record).
    resource: Resource | None = None

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)

    @property
    def message(self) -> str:
        return str(self.args[0])

    @property
    def audit_reason(self) -> str:
        """What the audit record says; the message, unless it carries what the client sent."""
        return self.message

    def about(self, resource: Resource) -> Self:
        """Name the resource this error is about, unless an inner step already named one."""
        if self.resource is None:
            self.resource = resource
        return self


class InvalidArgument(OpenKMSError):
    default_message = "A parameter is invalid."

    def __init__(self, message: str | None = None, *, parameter: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter


class MissingParameter(InvalidArgument):
    def __init__(self, parameter: str) -> None:
        super().__init__(f"The parameter {parameter} is required.", parameter=parameter)


class InvalidCiphertext(InvalidArgument):
    default_message = "The CiphertextBlob is invalid or does not match the encryption context."


class SignatureInvalid(InvalidArgument):
    """Raised by verification; the AsymmetricVerify adapter turns it into `Value: false`."""

    default_message = "The signature does not verify."


class UnsupportedOperation(InvalidArgument):
    default_message = "The operation is not supported."


class NotADataKey(UnsupportedOperation):
    """ExportDataKey refuses a blob that is not marked as a data key, whoever asks: otherwise it would
    be a Decrypt that a `Deny kms:Decrypt` does not stop. Blobs made before the mark are refused too."""

    default_message = (
        "ExportDataKey exports only data keys: the CiphertextBlob was not made by GenerateDataKey, "
        "GenerateDataKeyWithoutPlaintext or GenerateAndExportDataKey (or was made before OpenKMS marked "
        "data keys)."
    )


class InvalidImportToken(InvalidArgument):
    default_message = "The ImportToken is invalid or does not belong to this key."


class ImportTokenExpired(InvalidArgument):
    default_message = "The ImportToken has expired; call GetParametersForImport for a new one."


class IncorrectKeyMaterial(InvalidArgument):
    """One answer for every import failure after the token check (bad wrapping, wrong wrapping
    algorithm, wrong length, an invalid or mismatched private key, other material than before), so the
    answer is no padding oracle."""

    default_message = (
        "The EncryptedKeyMaterial could not be imported: it does not unwrap with this ImportToken's "
        "wrapping key and algorithm, does not fit the key spec, or is not the material imported before."
    )


class MalformedPolicy(InvalidArgument):
    """A policy document that OpenKMS would not enforce exactly as written."""

    default_message = "The policy document is malformed."


class PasswordPolicyViolation(InvalidArgument):
    """A new password that breaks the rules (`service/passwords.py`); the message names the rule."""

    default_message = "The password does not meet the password policy."


class IncorrectPassword(InvalidArgument):
    default_message = "The old password is incorrect."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, parameter="OldPassword")


class NotFound(OpenKMSError):
    default_message = "The specified resource is not found."


class KeyNotFound(NotFound):
    default_message = "The specified Key is not found."


class KeyVersionNotFound(NotFound):
    default_message = "The specified Key version is not found."


class AliasNotFound(NotFound):
    default_message = "The specified Alias is not found."


class InstanceNotFound(NotFound):
    default_message = "The specified KMS instance is not found."


class InvalidKeyState(OpenKMSError):
    default_message = "The key state does not allow this operation."


class KeyDisabled(InvalidKeyState):
    default_message = "The key is disabled."


class DeletionProtected(InvalidKeyState):
    default_message = "Deletion protection is enabled for the key; disable it first."


class Conflict(OpenKMSError):
    default_message = "The request conflicts with existing state."


class SecretNotFound(NotFound):
    default_message = "The specified secret is not found."


class SecretInDeleteWindow(Conflict):
    default_message = "The secret is scheduled for deletion; restore it with RestoreSecret first."


class QuotaExceeded(OpenKMSError):
    default_message = "A resource limit was exceeded."


class EntityError(OpenKMSError):
    """A RAM entity rule: the wire code is the family's code plus `.<entity>` (e.g. EntityNotExist.User)."""

    def __init__(self, entity: str, message: str | None = None) -> None:
        super().__init__(message)
        self.entity = entity


class EntityNotExist(EntityError):
    default_message = "The specified entity does not exist."


class EntityAlreadyExists(EntityError):
    default_message = "The specified entity already exists."


class DeleteConflict(EntityError):
    default_message = "The entity cannot be deleted while other entities depend on it."


class EntityLimitExceeded(EntityError):
    default_message = "The limit for this entity was reached."


class AuthenticationError(OpenKMSError):
    default_message = "The request could not be authenticated."


class UnknownAccessKey(AuthenticationError):
    default_message = "Specified access key is not found."


class SignatureMismatch(AuthenticationError):
    """The signature did not verify. Carries the server's string to sign (the legacy SDK parses it)."""

    def __init__(self, string_to_sign: str) -> None:
        super().__init__(
            "Specified signature is not matched with our calculation. "
            f"server string to sign is:{string_to_sign}"
        )
        self.string_to_sign = string_to_sign

    @property
    def audit_reason(self) -> str:
        # The string to sign holds every parameter (Plaintext included): the caller gets it back,
        # the audit log never does.
        return "Specified signature is not matched with our calculation."


class IncompleteSignature(AuthenticationError):
    default_message = "The request signature does not conform to Aliyun standards."


class InvalidTimestamp(AuthenticationError):
    default_message = (
        "The input parameter Timestamp that is mandatory for processing this request "
        "is not supplied or invalid."
    )


class ExpiredTimestamp(AuthenticationError):
    default_message = "The request timestamp is outside the allowed window."


class SecurityTokenExpired(AuthenticationError):
    default_message = "The security token has expired; request new credentials with AssumeRole."


class InvalidSecurityToken(AuthenticationError):
    default_message = "The security token is missing, malformed or does not belong to this access key."


class NonceReused(AuthenticationError):
    default_message = "The request signature nonce has been used."


class InstanceUnauthorized(AuthenticationError):
    """The instance API: no client key by that id (Alibaba's `Unauthorized`; the unified SDK reports
    it as InvalidAccessKeyId.NotFound)."""

    default_message = "The client key is not found."


class InstanceInvalidParam(AuthenticationError):
    """The instance API: a request the gateway refuses before the client key's signature is
    trusted, with Alibaba's messages (`The Param Date is invalid.`, `The Param Authorization is
    invalid.`), which the unified SDK maps to IllegalTimestamp and IncompleteSignature."""


class SignInFailed(AuthenticationError):
    """One answer whatever was wrong (unknown name, no login profile, wrong password, ended session)."""

    default_message = "The sign-in name or password is incorrect."


class SignInLocked(SignInFailed):
    def __init__(self, until: str | None = None) -> None:
        super().__init__(
            "Too many failed sign-ins: this sign-in name is locked"
            + (f" until {until}." if until else " for a while.")
        )


class AccessDenied(OpenKMSError):
    """A policy decision said no. `detail` becomes the answer's AccessDeniedDetail (no secrets in it)."""

    default_message = "You are not authorized to perform this operation."

    def __init__(self, message: str | None = None, *, detail: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.detail = detail


class DryRunPassed(OpenKMSError):
    """A request with DryRun=true that authenticated, was authorized and passed validation: it stops
    here, before the operation, so nothing was done and nothing changed (Alibaba answers a dry run
    that would succeed with an error too)."""

    default_message = "Request validation has been passed with DryRun flag set."


class Throttled(OpenKMSError):
    """Over a per-tenant limit (`node/rate_limits.py`, `node/nonces.py`): nothing was done."""

    default_message = "Request was denied due to request throttling; retry later."


class InternalError(OpenKMSError):
    """An unexpected fault inside the server (logged with its traceback where it happened)."""

    default_message = "Internal Failure."


class Unavailable(OpenKMSError):
    default_message = "The service is temporarily unavailable."


class Sealed(Unavailable):
    default_message = "The key store is sealed; unseal it to use keys."


class LeaseLost(Unavailable):
    """A jobs step was about to commit under a lease its process no longer holds (it expired, or
    another process took it): nothing is committed, and the process stops acting as the leader."""

    default_message = "This process no longer holds the jobs lease."


class RotationFailed(Unavailable):
    """OpenKMS could not set a managed secret's new password where it lives (the database cannot be
    reached, refused the sign-in or the change). The secret's ACSCurrent is untouched; the message
    names the server and the role, never a password."""

    default_message = "The managed secret could not be rotated; retry later."


class KeyStoreUnavailable(Unavailable):
    """The HSM or external key manager holding a key cannot be reached, or failed: only its keys are
    refused, and nothing was changed. The message names the instance, never a PIN or a credential."""

    default_message = "The key store that holds this key is unavailable; retry later."


class ExternalKeyError(OpenKMSError):
    """The external key manager answered, but refused the key: unknown there, disabled there, or not an
    AES-256 key allowed to encrypt and decrypt. Nothing was changed."""

    default_message = "The external key manager refused the external key."


class KeyMaterialLost(OpenKMSError):
    """The backend that held this version's material (an HSM token) no longer has it. Reported, never
    repaired by making new material: the operator restores the token from its backup."""

    default_message = "The key material of this key is missing from its key store."


class AuditUnavailable(OpenKMSError):
    default_message = "Internal Failure."


class RootOfTrustError(OpenKMSError):
    """Unsealing failed: the root key is missing, unsafe, or does not open the keyring. Operator-facing."""

    default_message = "The root of trust could not be loaded."


class StorageIntegrityError(OpenKMSError):
    """Stored data failed authentication (tampered, moved between keys, unknown KEK term). A server fault:
    the caller sees a generic message; the class name is what an operator searches the logs for."""

    default_message = "Internal Failure."


class UnknownAction(NotFound):
    default_message = "Specified api is not found, please check your url and method."


class UnsupportedVersion(InvalidArgument):
    default_message = "Specified API version is not supported."


class RequestTooLarge(InvalidArgument):
    default_message = "The request body is larger than this server accepts."
