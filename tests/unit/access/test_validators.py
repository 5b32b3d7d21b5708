"""KBO, INSZ (national register and BIS numbers) and RSZ numbers: accepted, refused with a clear
message naming the field, and formatted."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from access.errors import ValidationError
from access.validators import (
    format_insz,
    format_kbo,
    is_provisional_rsz,
    make_insz,
    make_kbo,
    make_rsz,
    mask_insz,
    normalise_insz,
    normalise_kbo,
    normalise_rsz,
    rsz_check_digits,
)


def refused(func, value, **kwargs) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        func(value, **kwargs)
    return info.value


# --- KBO / BCE -------------------------------------------------------------------------

# 0123.456.749: 97 - (01234567 mod 97) = 97 - 48 = 49.
VALID_KBO = "0123456749"


@pytest.mark.parametrize("typed", ["0123456749", "0123.456.749", "0123 456 749", "BE0123456749", "BE 0123.456.749",
                                   " 0123.456.749 ", "123456749"])
def test_kbo_accepts_the_usual_spellings_and_returns_ten_digits(typed):
    assert normalise_kbo(typed) == VALID_KBO


def test_kbo_with_a_leading_one_is_valid():
    # 1000.000.021: 97 - (10000000 mod 97) = 97 - 76 = 21.
    assert normalise_kbo("1000.000.021") == "1000000021"


@pytest.mark.parametrize("wrong_check", ["0123456748", "0123456750", "0123456700", "0123456794"])
def test_kbo_with_wrong_check_digits_is_refused_with_the_rule(wrong_check):
    error = refused(normalise_kbo, wrong_check)
    assert error.field == "kbo"
    assert "97" in error.message and "check digits" in error.message


def test_kbo_with_a_changed_body_digit_is_refused():
    # Same check digits, one digit of the body changed.
    error = refused(normalise_kbo, "0123456849")
    assert "check digits" in error.message


@pytest.mark.parametrize("bad", ["2123456749", "9123456749", "01234567490", "01234567", "0123456abc"])
def test_kbo_of_the_wrong_shape_is_refused(bad):
    error = refused(normalise_kbo, bad)
    assert error.field == "kbo"
    assert "10 digits" in error.message


@pytest.mark.parametrize("empty", ["", "   ", None])
def test_kbo_is_required(empty):
    error = refused(normalise_kbo, empty)
    assert error.field == "kbo"
    assert "required" in error.message


def test_kbo_error_names_the_field_it_is_told():
    assert refused(normalise_kbo, "0123456748", field="enterprise_kbo").field == "enterprise_kbo"


def test_format_kbo():
    assert format_kbo(VALID_KBO) == "0123.456.749"


@given(st.integers(min_value=1, max_value=19_999_999))
@settings(max_examples=200, deadline=None)
def test_make_kbo_builds_numbers_the_validator_accepts_and_every_other_check_is_refused(body):
    number = make_kbo(body)
    assert len(number) == 10 and number[0] in "01"
    assert normalise_kbo(number) == number
    assert int(number[-2:]) == 97 - body % 97
    wrong = f"{number[:-2]}{(int(number[-2:]) % 97) + 1:02d}"
    with pytest.raises(ValidationError):
        normalise_kbo(wrong)


@pytest.mark.parametrize("body", [-1, 20_000_000, 99_999_999])
def test_make_kbo_refuses_a_body_that_is_not_eight_digits_starting_with_0_or_1(body):
    with pytest.raises(ValueError):
        make_kbo(body)


# --- INSZ / NISS --------------------------------------------------------------------

def _check(base: int) -> str:
    return f"{97 - base % 97:02d}"


def test_insz_of_someone_born_in_the_1900s():
    # 85.01.01-123: 97 - (850101123 mod 97)
    number = "850101123" + _check(850101123)
    assert normalise_insz(number) == number
    assert make_insz("850101", 123) == number


def test_insz_of_someone_born_from_2000_uses_a_leading_2():
    # 05.01.01-123 born in 2005: 97 - (2050101123 mod 97)
    number = "050101123" + _check(2_050_101_123)
    assert number != "050101123" + _check(50_101_123)  # the two rules give different check digits here
    assert normalise_insz(number) == number
    assert make_insz("050101", 123, born_2000_or_later=True) == number


def test_insz_accepts_the_printed_form():
    number = make_insz("850101", 123)
    assert normalise_insz(format_insz(number)) == number


def test_insz_failing_both_birth_century_rules_is_refused():
    base = 850101123
    good = {int(_check(base)), int(_check(2_000_000_000 + base))}
    wrong = next(c for c in range(1, 98) if c not in good)
    error = refused(normalise_insz, f"{base}{wrong:02d}")
    assert error.field == "insz"
    assert "19xx" in error.message and "20xx" in error.message


@pytest.mark.parametrize("month_offset", [20, 40])
def test_bis_numbers_with_the_month_raised_by_20_or_40_are_accepted(month_offset):
    number = make_insz(f"85{1 + month_offset:02d}01", 57)
    assert normalise_insz(number) == number


def test_bis_number_born_from_2000_is_accepted():
    number = make_insz("054115", 3, born_2000_or_later=True)
    assert normalise_insz(number) == number


@pytest.mark.parametrize("birth", ["851301", "856101", "859901"])
def test_insz_with_an_impossible_month_is_refused(birth):
    # Month 13, 61 and 99 are neither a national register month (0-12) nor a BIS month (20-32, 40-52).
    error = refused(normalise_insz, make_insz(birth, 123))
    assert error.field == "insz"


@pytest.mark.parametrize("bad", ["8501011238", "850101123870", "85O10112387", "1234"])
def test_insz_of_the_wrong_shape_is_refused(bad):
    error = refused(normalise_insz, bad)
    assert error.field == "insz"
    assert "11 digits" in error.message


def test_insz_is_required():
    assert "required" in refused(normalise_insz, "").message


def test_format_and_mask_insz():
    number = make_insz("850101", 123)
    assert format_insz(number) == f"85.01.01-123.{number[-2:]}"
    masked = mask_insz(number)
    assert masked == f"85.01.xx-xxx.{number[-2:]}"
    assert "123" not in masked


# --- RSZ / ONSS ---------------------------------------------------------------------

def test_rsz_check_digits_follow_the_published_rule():
    for radix in (1, 123_456, 1_234_567, 5_123_456, 9_999_999):
        assert rsz_check_digits(radix) == 96 - (radix * 100) % 97
    # 123456700 = 97 * 1272749 + 47
    assert rsz_check_digits(1_234_567) == 49


@pytest.mark.parametrize("typed", ["123456749", "1234567-49", "1234567 49", " 123.4567.49 "])
def test_valid_rsz_number(typed):
    assert normalise_rsz(typed) == "123456749"
    assert make_rsz(1_234_567) == "123456749"


@pytest.mark.parametrize("wrong", ["123456748", "123456750", "123456700", "123456796"])
def test_rsz_with_wrong_check_digits_is_refused_with_the_rule(wrong):
    error = refused(normalise_rsz, wrong)
    assert error.field == "rsz_number"
    assert "96" in error.message and "97" in error.message


def test_provisional_rsz_numbers_start_with_5_and_follow_the_same_rule():
    number = make_rsz(5_123_456)
    assert number.startswith("5")
    assert normalise_rsz(number) == number
    assert is_provisional_rsz(number)
    assert not is_provisional_rsz(make_rsz(1_234_567))
    wrong = number[:-2] + f"{(int(number[-2:]) + 1) % 100:02d}"
    assert refused(normalise_rsz, wrong).field == "rsz_number"


def test_rsz_with_the_zero_category_prefix_is_accepted_and_the_prefix_dropped():
    assert normalise_rsz("000-1234567-49") == "123456749"
    assert normalise_rsz("000123456749") == "123456749"


def test_rsz_with_another_category_prefix_is_refused():
    error = refused(normalise_rsz, "010-1234567-49")
    assert error.field == "rsz_number"
    assert "radix" in error.message


def test_rsz_with_a_leading_zero_radix_has_one_normal_form():
    # A radix of 7 digits with a leading zero may also be written as 8 digits; both spellings
    # are accepted, so they must normalise to the same number (or the uniqueness of RSZ numbers
    # can be bypassed by writing one zero more).
    seven = make_rsz(123_456)            # "0123456" + check digits
    eight = "0" + seven                   # "00123456" + the same check digits
    assert normalise_rsz(seven) == normalise_rsz(eight)


def test_a_radix_with_a_leading_zero_is_not_provisional():
    # Radix 0500000 starts with 0, not with 5; stripping leading zeros must not make it provisional.
    assert not is_provisional_rsz(make_rsz(500_000))


@pytest.mark.parametrize("bad", ["12345678", "12345678901", "1234"])
def test_rsz_of_the_wrong_length_is_refused(bad):
    error = refused(normalise_rsz, bad)
    assert error.field == "rsz_number"
    assert "radix" in error.message


@pytest.mark.parametrize("empty", ["", "--", None])
def test_rsz_is_required(empty):
    error = refused(normalise_rsz, empty)
    assert "required" in error.message


@given(st.integers(min_value=1_000_000, max_value=9_999_999))
@settings(max_examples=200, deadline=None)
def test_make_rsz_builds_numbers_the_validator_accepts(radix):
    number = make_rsz(radix)
    assert len(number) == 9
    assert normalise_rsz(number) == number
    assert is_provisional_rsz(number) == (5_000_000 <= radix < 6_000_000)
