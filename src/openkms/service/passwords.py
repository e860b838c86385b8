"""Console passwords: hashing (Argon2id, pyca/cryptography) and the password rules.

Owns the stored format (a PHC string: `$argon2id$v=19$m=...,t=...,p=...$salt$hash`, so parameters
can be raised later without breaking stored hashes) and the rules a new password must meet (Alibaba's
default RAM password policy). Never logs, returns or puts a password in an error message.
"""

from __future__ import annotations

import functools
import os
import secrets
import string

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from openkms.errors import PasswordPolicyViolation

# OWASP's Argon2id recommendation is m=19 MiB, t=2, p=1 or an equivalent; 46 MiB with t=2 costs
# about 90 ms a hash here, within what a sign-in may cost.
MEMORY_KIB = 47104
ITERATIONS = 2
LANES = 1
SALT_BYTES = 16
HASH_BYTES = 32

# Alibaba's default RAM password policy: 8 to 32 characters with at least one lowercase letter, one
# uppercase letter and one digit; symbols are allowed, not required.
MIN_LENGTH = 8
MAX_LENGTH = 32
SYMBOLS = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
ALLOWED = frozenset(string.ascii_letters + string.digits + SYMBOLS)
RULE = (
    f"{MIN_LENGTH} to {MAX_LENGTH} characters with at least one lowercase letter, one uppercase letter "
    "and one digit; letters, digits and ASCII symbols only"
)


def hash_password(password: str) -> str:
    """The PHC string of a new random-salted Argon2id hash of `password`."""
    kdf = Argon2id(
        salt=os.urandom(SALT_BYTES),
        length=HASH_BYTES,
        iterations=ITERATIONS,
        lanes=LANES,
        memory_cost=MEMORY_KIB,
    )
    return kdf.derive_phc_encoded(password.encode("utf-8"))


def verify_password(password: str, encoded: str) -> bool:
    """Whether `password` matches the stored PHC string (the library compares in constant time)."""
    try:
        Argon2id.verify_phc_encoded(password.encode("utf-8"), encoded)
    except InvalidKey:
        return False
    return True


@functools.cache
def _decoy() -> str:
    """A hash nobody's password matches (made once per process, on first use)."""
    return hash_password(secrets.token_urlsafe(24))


def burn_verification(password: str) -> None:
    """Spend one verification's time and memory on nothing (an unknown name, a missing profile), so
    a failure cannot be told apart by how long it took."""
    verify_password(password, _decoy())


def check_rules(password: str, parameter: str = "Password") -> str:
    """`password` if it meets the rules; otherwise PasswordPolicyViolation (naming the rule, never the
    password)."""
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise PasswordPolicyViolation(
            f"The {parameter} must be {MIN_LENGTH} to {MAX_LENGTH} characters long.", parameter=parameter
        )
    if not set(password) <= ALLOWED:
        raise PasswordPolicyViolation(
            f"The {parameter} may hold only letters, digits and ASCII symbols.", parameter=parameter
        )
    missing = [
        name
        for name, present in (
            ("a lowercase letter", any(c.islower() for c in password)),
            ("an uppercase letter", any(c.isupper() for c in password)),
            ("a digit", any(c.isdigit() for c in password)),
        )
        if not present
    ]
    if missing:
        raise PasswordPolicyViolation(
            f"The {parameter} does not meet the password policy: it needs {', '.join(missing)}.",
            parameter=parameter,
        )
    return password


def generate_password(length: int = 24) -> str:
    """A random password that meets the rules (for the root's first console password)."""
    alphabet = string.ascii_letters + string.digits + "-_.!@#%+="
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        try:
            return check_rules(candidate)
        except PasswordPolicyViolation:
            continue
