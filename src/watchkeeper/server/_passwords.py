"""Local account passwords: the rules a new password must meet, and argon2id hashes.

Hashes are argon2id (`argon2-cffi`'s defaults, RFC 9106's second recommended profile), each
with its own salt; a hash made with older parameters is re-made at the next sign-in. A
sign-in for an account that does not exist verifies against a dummy hash, so the answer
takes as long as for a wrong password and says nothing about who has an account.

The rules follow NIST SP 800-63B: a minimum length (12), a maximum (so hashing stays
bounded), not the username, not a few very common passwords; no composition rules.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from watchkeeper.errors import ValidationError

MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 256
#: A few passwords long enough to pass the length rule that lists of leaked ones start with.
_COMMON = frozenset(
    {
        "password1234", "123456789012", "qwertyuiopas", "passwordpassword", "iloveyou1234",
        "administrator", "watchkeeper1", "watchkeeper123", "changeme1234", "letmein12345",
        "111111111111", "000000000000", "abcdefghijkl", "qwerty123456", "1234567890ab",
    }
)  # fmt: skip

_HASHER = PasswordHasher()
_DUMMY = _HASHER.hash("a password nobody has: it keeps the timing of unknown names")


def check_password(password: str, username: str) -> str:
    """`password` when it meets the rules; ValidationError says which one it breaks."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise ValidationError(
            f"the password is too short: use at least {MIN_PASSWORD_CHARS} characters"
        )
    if len(password) > MAX_PASSWORD_CHARS:
        raise ValidationError(
            f"the password is too long: use at most {MAX_PASSWORD_CHARS} characters"
        )
    lowered = password.lower()
    if username and username.lower() in lowered:
        raise ValidationError("the password must not contain the username")
    if lowered in _COMMON or len(set(password)) < 4:
        raise ValidationError("the password is too easy to guess: pick a longer, less common one")
    return password


def hash_password(password: str) -> str:
    """An argon2id hash of `password`, with a new random salt."""
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """True when `password` matches the `stored` hash; None (no hash, an unknown account or
    one that signs in only through SSO) is checked against a dummy hash and is False."""
    if len(password) > MAX_PASSWORD_CHARS:
        return False
    try:
        return _HASHER.verify(stored or _DUMMY, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """True when `stored` was made with weaker parameters than today's."""
    return _HASHER.check_needs_rehash(stored)
