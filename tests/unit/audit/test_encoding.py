"""The chain's fast encoding (canonical_text, used to write and verify) is exactly the documented one
(canonical_bytes over canonical_record, through json's encoder) for any values, typed as SQLAlchemy
returns them or raw as SQLite returns them."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from hypothesis import given, strategies as st

from audit.chain import RECORD_FIELDS, canonical_bytes, canonical_record, canonical_text, hash_values, record_hash

ids = st.one_of(st.none(), st.integers(1, 2**31 - 1))
texts = st.one_of(st.none(), st.text())
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63) | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=10)
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                       timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=2))]))
records = st.tuples(ids, moments, ids, texts, ids, ids, texts, st.text(), st.text(), texts,
                    st.one_of(st.none(), st.lists(st.text(), max_size=4)), json_values, texts, texts, texts)


def test_the_field_order_of_the_fast_encoding():
    assert RECORD_FIELDS[:2] == ("id", "occurred_at") and RECORD_FIELDS[10:12] == ("path", "details")
    assert RECORD_FIELDS[13:] == ("user_agent", "request_id")


@given(values=records, seq=st.integers(1, 2**62), prev=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64))
def test_typed_values(values, seq, prev):
    reference = canonical_bytes(canonical_record(values), seq, prev).decode()
    assert canonical_text(values, seq, prev) == reference
    assert json.loads(reference)["record"]["occurred_at"].endswith("Z")
    assert hash_values(values, seq, prev) == record_hash(canonical_record(values), seq, prev)


@given(values=records, seq=st.integers(1, 2**62))
def test_raw_sqlite_values(values, seq):
    """SQLite keeps the timestamp as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC wall clock) and JSON as the
    text json.dumps wrote."""
    raw = list(values)
    raw[1] = values[1].astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    raw[10], raw[11] = (None if values[10] is None else json.dumps(values[10])), json.dumps(values[11])
    assert canonical_text(raw, seq, "0" * 64, json_text=True) == \
        canonical_bytes(canonical_record(values), seq, "0" * 64).decode()


def test_a_json_column_tampered_into_a_number_or_bad_text_is_encoded_not_parsed_into_a_crash():
    """SQLite lets a row edited around the portal hold a number or malformed text in a JSON column;
    verify must report it (the hash differs), not stop on a TypeError or JSONDecodeError."""
    from audit.chain import _json_text

    assert _json_text('{"b": 1, "a": [1.5, null]}') == '{"a":[1.5,null],"b":1}'
    assert _json_text(0) == "0" and _json_text(2.5) == "2.5"
    assert _json_text('{"a": ') == '{"a": '
    stored = (1, "2026-11-02 09:00:00.000000", None, None, None, None, None, "login", "success", None,
              None, '{"before": null}', None, None, None)
    tampered = stored[:11] + (0,) + stored[12:]
    assert hash_values(stored, 1, "0" * 64, json_text=True) != hash_values(tampered, 1, "0" * 64, json_text=True)
