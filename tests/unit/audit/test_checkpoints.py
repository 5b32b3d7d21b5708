"""Checkpoints: the RFC 6962 Merkle root, the automatic checkpoint when the chain crosses a multiple
of the interval, the one on demand, and none without a key."""
from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, strategies as st
from sqlalchemy import func, select

from audit.chain import verify
from audit.checkpoints import MerkleBuilder, key_id, merkle_root, statement_bytes, write_checkpoint
from audit.models import ChainLink, Checkpoint
from audit.operations import record
from audit.settings import SETTINGS_KEY
from tests.unit.audit.chain_fixtures import settings


def reference_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1, as written there (recursive)."""
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + reference_root(leaves[:k]) + reference_root(leaves[k:])).digest()


@given(st.integers(1, 300))
def test_the_streaming_merkle_root_is_rfc_6962s(size):
    leaves = [hashlib.sha256(str(n).encode()).digest() for n in range(size)]
    builder = MerkleBuilder()
    for leaf in leaves:
        builder.add(leaf)
    assert builder.root() == reference_root(leaves)
    assert merkle_root(leaf.hex() for leaf in leaves) == reference_root(leaves).hex()


def test_merkle_root_of_known_leaves():
    # Two leaves: H(0x01 || H(0x00 || a) || H(0x00 || b)), computed by hand.
    a, b = b"\x11" * 32, b"\x22" * 32
    expected = hashlib.sha256(b"\x01" + hashlib.sha256(b"\x00" + a).digest()
                              + hashlib.sha256(b"\x00" + b).digest()).hexdigest()
    assert merkle_root([a.hex(), b.hex()]) == expected


def _head(session) -> int:
    return session.scalar(select(func.max(ChainLink.seq))) or 0


def _checkpoints(session) -> list[tuple[int, int]]:
    return [(c.seq_from, c.seq_to) for c in session.scalars(select(Checkpoint).order_by(Checkpoint.seq_to))]


def test_an_automatic_checkpoint_at_each_multiple_then_one_on_demand(db_session, clock, ctx, signing_key):
    db_session.info[SETTINGS_KEY] = settings(signing_key, every=5)
    start = _head(db_session)
    assert start == 0 and _checkpoints(db_session) == []
    for batch in range(3):  # seqs 1-3, 4-6 (crosses 5), 7-9
        for _ in range(3):
            record(db_session, ctx, action="test.cp", outcome="success")
        db_session.commit()
        assert _checkpoints(db_session) == ([] if batch == 0 else [(1, 5)])
    checkpoint = write_checkpoint(db_session, signing_key)
    db_session.commit()
    assert _checkpoints(db_session) == [(1, 5), (6, 9)]
    assert checkpoint.head_hash == db_session.scalar(select(ChainLink.record_hash).where(ChainLink.seq == 9))
    assert checkpoint.key_id == key_id(signing_key.public_key())
    signing_key.public_key().verify(bytes.fromhex(checkpoint.signature), statement_bytes(
        seq_from=6, seq_to=9, head_hash=checkpoint.head_hash, merkle_root=checkpoint.merkle_root,
        key_id=checkpoint.key_id, created_at=checkpoint.created_at))
    assert write_checkpoint(db_session, signing_key) is None  # nothing new to sign
    result = verify(db_session, public_keys=[signing_key.public_key()])
    assert (result.ok, result.checkpoints, result.signatures_checked, result.warnings) == (True, 2, 2, [])


def test_a_commit_that_crosses_several_multiples_signs_up_to_the_highest(db_session, clock, ctx, signing_key):
    db_session.info[SETTINGS_KEY] = settings(signing_key, every=4)
    for _ in range(10):
        record(db_session, ctx, action="test.cp", outcome="success")
    db_session.commit()
    assert _checkpoints(db_session) == [(1, 8)]


def test_no_key_no_checkpoint(db_session, clock, ctx):
    db_session.info[SETTINGS_KEY] = settings(None, every=1)
    record(db_session, ctx, action="test.cp", outcome="success")
    db_session.commit()
    assert _checkpoints(db_session) == [] and _head(db_session) == 1


@pytest.mark.parametrize("every", [0, -3])
def test_no_automatic_checkpoint_when_the_interval_is_off(db_session, clock, ctx, signing_key, every):
    db_session.info[SETTINGS_KEY] = settings(signing_key, every=every)
    record(db_session, ctx, action="test.cp", outcome="success")
    db_session.commit()
    assert _checkpoints(db_session) == []


def test_a_checkpoint_when_the_time_interval_has_passed(db_session, clock, ctx, signing_key):
    """Count interval off, 60 minutes: the first commit an hour after the first link (then after the
    last checkpoint) signs up to the head; commits within the hour do not."""
    db_session.info[SETTINGS_KEY] = settings(signing_key, every=0, minutes=60)
    for _ in range(2):
        record(db_session, ctx, action="test.cp", outcome="success")
        db_session.commit()
    clock.advance(minutes=59)
    record(db_session, ctx, action="test.cp", outcome="success")
    db_session.commit()
    assert _checkpoints(db_session) == []
    clock.advance(minutes=1)
    record(db_session, ctx, action="test.cp", outcome="success")
    db_session.commit()
    assert _checkpoints(db_session) == [(1, 4)]
    clock.advance(minutes=30)
    record(db_session, ctx, action="test.cp", outcome="success")
    db_session.commit()
    clock.advance(minutes=30)
    record(db_session, ctx, action="test.cp", outcome="success")
    db_session.commit()
    assert _checkpoints(db_session) == [(1, 4), (5, 6)]
    result = verify(db_session, public_keys=[signing_key.public_key()])
    assert result.ok and result.checkpoints == 2


def test_the_count_and_the_time_interval_together(db_session, clock, ctx, signing_key):
    db_session.info[SETTINGS_KEY] = settings(signing_key, every=3, minutes=60)
    for _ in range(4):
        record(db_session, ctx, action="test.cp", outcome="success")
    db_session.commit()  # crosses 3: the count's checkpoint, the hour has not passed
    assert _checkpoints(db_session) == [(1, 3)]
    clock.advance(hours=2)
    record(db_session, ctx, action="test.cp", outcome="success")
    db_session.commit()  # seq 5: the hour since the last checkpoint has passed
    assert _checkpoints(db_session) == [(1, 3), (4, 5)]
