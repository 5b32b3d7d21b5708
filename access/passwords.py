"""Password hashing (argon2id) and the password policy (NIST 800-63B / ASVS style:
length, a list of common passwords and the context; no composition rules)."""
from __future__ import annotations

import re
import secrets
from functools import lru_cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from access.catalogue import CONFIG_DIR
from access.errors import ValidationError

# argon2-cffi's defaults are RFC 9106's low-memory profile of argon2id.
_hasher = PasswordHasher()
# Verified against when the login name is unknown, so a miss costs as much as a hit.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))

MIN_LENGTH = 12
MAX_LENGTH = 128
_TRAILING_NOISE = re.compile(r"[\d\W_]+$")
# Unambiguous characters for issued credentials (no 0/O, 1/l/I).
_ISSUED_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def burn_verification_time(password: str) -> None:
    verify_password(None, password)


def issue_secret(length: int = 16) -> str:
    return "".join(secrets.choice(_ISSUED_ALPHABET) for _ in range(length))


@lru_cache(maxsize=1)
def common_passwords(path: str | None = None) -> frozenset[str]:
    source = Path(path) if path else CONFIG_DIR / "common-passwords.txt"
    lines = source.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def check_password_policy(password: str, context: list[str], field: str = "password") -> None:
    """Raise ValidationError with the first rule the new password breaks."""
    if len(password) < MIN_LENGTH:
        raise ValidationError("The password must have at least %(min_length)s characters.", field,
                              min_length=MIN_LENGTH)
    if len(password) > MAX_LENGTH:
        raise ValidationError("The password may have at most %(max_length)s characters.", field, max_length=MAX_LENGTH)
    lowered = password.lower()
    if len(set(lowered)) < 5:
        raise ValidationError("The password repeats too few different characters.", field)
    common = common_passwords()
    if lowered in common or _TRAILING_NOISE.sub("", lowered) in common:
        raise ValidationError("This password is among the most common passwords; choose another.", field)
    for word in context:
        word = (word or "").strip().lower()
        if len(word) >= 4 and word in lowered:
            raise ValidationError("The password may not contain your name, user name or your enterprise's name or number.", field)
