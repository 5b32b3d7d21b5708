"""Belgian identification numbers.

KBO/BCE and INSZ/BIS come from python-stdnum; the RSZ/ONSS employer number is
not in stdnum, so its check digits are computed here from the published rule.
"""
from __future__ import annotations

import re
import unicodedata

from stdnum import exceptions as stdnum_exceptions
from stdnum.be import ssn, vat

from access.errors import ValidationError

_NON_DIGITS = re.compile(r"[^0-9]")


def normalise_kbo(value: str, field: str = "kbo") -> str:
    """Return the 10-digit enterprise number, or raise with a message that says why."""
    raw = (value or "").strip()
    if not raw:
        raise ValidationError("The KBO number is required.", field)
    try:
        number = vat.validate(raw)
    except stdnum_exceptions.InvalidChecksum:
        raise ValidationError(
            "This KBO number fails the check digits: the last two digits must be 97 minus the first eight modulo 97.",
            field,
        ) from None
    except stdnum_exceptions.ValidationError:
        raise ValidationError("A KBO number has 10 digits and starts with 0 or 1.", field) from None
    return number


def format_kbo(number: str) -> str:
    return f"{number[0:4]}.{number[4:7]}.{number[7:10]}"


def normalise_insz(value: str, field: str = "insz") -> str:
    """Return the 11-digit INSZ (national register or BIS number)."""
    raw = (value or "").strip()
    if not raw:
        raise ValidationError("The INSZ number is required.", field)
    try:
        # ssn accepts national register numbers (both birth-century rules) and BIS numbers.
        return ssn.validate(raw)
    except stdnum_exceptions.InvalidChecksum:
        raise ValidationError(
            "This INSZ number fails the check digits (neither the 19xx nor the 20xx birth-year rule holds).",
            field,
        ) from None
    except stdnum_exceptions.ValidationError:
        raise ValidationError("An INSZ number has 11 digits: birth date, serial number and check digits.", field) from None


def format_insz(number: str) -> str:
    return f"{number[0:2]}.{number[2:4]}.{number[4:6]}-{number[6:9]}.{number[9:11]}"


def mask_insz(number: str) -> str:
    """Shown to those who may see that a person exists but not his full number."""
    return f"{number[0:2]}.{number[2:4]}.xx-xxx.{number[9:11]}"


def rsz_check_digits(radix: int) -> int:
    return 96 - (radix * 100) % 97


def normalise_rsz(value: str, field: str = "rsz_number") -> str:
    """Return the RSZ employer number as radix + 2 check digits.

    The check digits are 96 - (radix * 100 mod 97). Provisional numbers (radix
    starting with 5) follow the same rule. A leading category prefix of zeros
    ("000-1234567-05") is accepted and dropped.
    """
    digits = _NON_DIGITS.sub("", value or "")
    if not digits:
        raise ValidationError("The RSZ number is required for an employer.", field)
    if len(digits) == 12 and digits.startswith("000"):
        digits = digits[3:]
    if len(digits) not in (9, 10):
        raise ValidationError("An RSZ number has a radix of 7 or 8 digits followed by 2 check digits.", field)
    radix, check = int(digits[:-2]), int(digits[-2:])
    if rsz_check_digits(radix) != check:
        raise ValidationError(
            "This RSZ number fails the check digits: they must be 96 minus (radix × 100 modulo 97).", field
        )
    # One spelling per number: "0123456-xx" and "00123456-xx" are the same
    # employer, and the unique index must see them as one.
    return f"{radix:07d}{check:02d}"


def is_provisional_rsz(number: str) -> bool:
    """On a normalised number: provisional radixes start with 5 (0500000 does not)."""
    return number.startswith("5")


def make_rsz(radix: int) -> str:
    """Build a valid RSZ number from a radix (tests, demo and benchmark data)."""
    return f"{radix:07d}{rsz_check_digits(radix):02d}"


def make_kbo(body: int) -> str:
    """Build a valid KBO number from an 8-digit body starting with 0 or 1."""
    if not 0 <= body < 20_000_000:
        raise ValueError("body must have 8 digits and start with 0 or 1")
    return f"{body:08d}{97 - body % 97:02d}"


def make_insz(birth_yymmdd: str, serial: int, born_2000_or_later: bool = False) -> str:
    base = int(birth_yymmdd + f"{serial:03d}")
    number = base + 2_000_000_000 if born_2000_or_later else base
    return f"{base:09d}{97 - number % 97:02d}"


def fold_for_search(text: str) -> str:
    """Case- and accent-insensitive form of a name: "Établissements" and
    "etablissements" meet, whatever the database's own lower() does."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
