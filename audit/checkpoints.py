"""Signed checkpoints of the audit chain.

A checkpoint states, for the interval of links seq_from..seq_to: the chain's head hash at seq_to and
the Merkle root of the interval's record hashes, signed with the portal's Ed25519 key. A forger who
rewrites records and recomputes the chain from there to its head still cannot produce the
signature: every interval a checkpoint covers is fixed. (After the last checkpoint, only the
chain itself and the sink's copy stand; hence the automatic checkpoints.)

Merkle tree (RFC 6962, section 2.1, with SHA-256): the leaves are the interval's record hashes
(32 bytes each, from the 64 hex digits) in seq order; leaf hash = SHA-256(0x00 || record hash), node
hash = SHA-256(0x01 || left || right); a tree of n > 1 leaves splits at the largest power of two
smaller than n (left: that many leaves). `merkle_root` is its root in lowercase hex.

The signature is Ed25519 (RFC 8032) over the UTF-8 bytes of the JSON text of

    {"created_at": "...Z", "head_hash": ..., "key_id": ..., "merkle_root": ..., "seq_from": n,
     "seq_to": n, "v": 1}

written as in audit/chain.py (sorted keys, no whitespace, created_at in UTC with microseconds),
stored as 128 lowercase hex digits. key_id = lowercase hex SHA-256 of the raw 32-byte public key.

When: automatically in the chain's commit hook (audit/chain.py) when a commit's links cross a
multiple of AUDIT_CHECKPOINT_EVERY (the checkpoint then ends exactly at that multiple, so that the
automatic intervals are regular), and on demand with `flask --app wsgi audit checkpoint` (up to the
head). Each new checkpoint starts right after the last one. Without a signing key, none is written.
"""
from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from access.clock import as_utc, utcnow
from audit.chain import Problem, _encoder, iso_utc, last_link, lock_chain
from audit.models import ChainLink, Checkpoint

if TYPE_CHECKING:
    from audit.chain import VerifyResult
    from audit.settings import AuditSettings

STATEMENT_VERSION = 1
_links = ChainLink.__table__
_checkpoints = Checkpoint.__table__


# --- keys ------------------------------------------------------------------------------------

def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key")
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """A PEM public key, or the public half of a PEM private key."""
    data = Path(path).read_bytes()
    if b"PRIVATE KEY" in data:
        return load_private_key(path).public_key()
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path}: not an Ed25519 public key")
    return key


def generate_private_key_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


# --- Merkle tree -------------------------------------------------------------------------------

class MerkleBuilder:
    """RFC 6962 Merkle tree hash, fed one leaf at a time in O(log n) memory: the perfect subtrees
    built so far are kept like the bits of a binary counter and folded from the right at the end."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []  # (size, hash), sizes strictly decreasing
        self.size = 0

    def add_hex(self, record_hash_hex: str) -> None:
        self.add(bytes.fromhex(record_hash_hex))

    def add(self, leaf: bytes) -> None:
        node, size = hashlib.sha256(b"\x00" + leaf).digest(), 1
        stack = self._stack
        while stack and stack[-1][0] == size:
            _, left = stack.pop()
            node, size = hashlib.sha256(b"\x01" + left + node).digest(), size * 2
        stack.append((size, node))
        self.size += 1

    def root(self) -> bytes:
        if not self._stack:
            return hashlib.sha256(b"").digest()
        node = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            node = hashlib.sha256(b"\x01" + left + node).digest()
        return node

    def root_hex(self) -> str:
        return self.root().hex()


def merkle_root(record_hashes_hex: Iterable[str]) -> str:
    builder = MerkleBuilder()
    for value in record_hashes_hex:
        builder.add_hex(value)
    return builder.root_hex()


# --- writing -----------------------------------------------------------------------------------

def statement_bytes(*, seq_from: int, seq_to: int, head_hash: str, merkle_root: str, key_id: str,
                    created_at) -> bytes:
    return _encoder.encode({
        "created_at": iso_utc(created_at), "head_hash": head_hash, "key_id": key_id, "merkle_root": merkle_root,
        "seq_from": seq_from, "seq_to": seq_to, "v": STATEMENT_VERSION,
    }).encode()


def last_checkpoint_seq(session: Session) -> int:
    return session.scalar(select(_checkpoints.c.seq_to).order_by(_checkpoints.c.seq_to.desc()).limit(1)) or 0


def write_checkpoint(session: Session, signing_key: Ed25519PrivateKey, *, up_to: int | None = None,
                     batch: int = 10_000) -> Checkpoint | None:
    """Sign the links after the last checkpoint up to `up_to` (default: the head). None when there
    is nothing new to sign. Takes the chain lock; flushes, the caller commits."""
    lock_chain(session)
    head, _ = last_link(session)
    seq_to = head if up_to is None else min(up_to, head)
    seq_from = last_checkpoint_seq(session) + 1
    if seq_to < seq_from:
        return None
    builder, head_hash = MerkleBuilder(), None
    rows = session.connection().execute(
        select(_links.c.record_hash).where(_links.c.seq.between(seq_from, seq_to)).order_by(_links.c.seq)
        .execution_options(yield_per=batch))
    for (digest,) in rows:
        builder.add_hex(digest)
        head_hash = digest
    if builder.size != seq_to - seq_from + 1:
        raise RuntimeError(f"the chain has a gap between seq {seq_from} and {seq_to}: run `audit verify`")
    created_at = utcnow()
    public_id = key_id(signing_key.public_key())
    root = builder.root_hex()
    signature = signing_key.sign(statement_bytes(seq_from=seq_from, seq_to=seq_to, head_hash=head_hash,
                                                 merkle_root=root, key_id=public_id, created_at=created_at))
    checkpoint = Checkpoint(seq_from=seq_from, seq_to=seq_to, head_hash=head_hash, merkle_root=root,
                            signature=signature.hex(), key_id=public_id, created_at=created_at)
    session.execute(insert(_checkpoints), [{
        "seq_from": seq_from, "seq_to": seq_to, "head_hash": head_hash, "merkle_root": root,
        "signature": checkpoint.signature, "key_id": public_id, "created_at": created_at}])
    return checkpoint


def checkpoint_if_due(session: Session, settings: "AuditSettings", first_seq: int, last_seq: int) -> None:
    """Called by the chain hook with the seqs it just wrote: a checkpoint at the highest multiple of
    the count interval that they crossed; else, when the time interval has passed since the last
    checkpoint (or the first link), one up to the head."""
    if settings.signing_key is None:
        return
    every = settings.checkpoint_every
    if every and every > 0:
        boundary = (last_seq // every) * every
        if boundary >= first_seq:
            write_checkpoint(session, settings.signing_key, up_to=boundary)
            if boundary == last_seq:
                return
    if settings.checkpoint_minutes and settings.checkpoint_minutes > 0 and _time_is_up(session, settings, last_seq):
        write_checkpoint(session, settings.signing_key, up_to=last_seq)


def _time_is_up(session: Session, settings: "AuditSettings", last_seq: int) -> bool:
    last = session.execute(select(_checkpoints.c.seq_to, _checkpoints.c.created_at)
                           .order_by(_checkpoints.c.seq_to.desc()).limit(1)).first()
    if last is not None and last.seq_to >= last_seq:
        return False
    since = last.created_at if last is not None else session.scalar(
        select(ChainLink.chained_at).where(ChainLink.seq == 1))
    return since is not None and utcnow() - as_utc(since) >= timedelta(minutes=settings.checkpoint_minutes)


# --- verifying ---------------------------------------------------------------------------------

class CheckpointChecker:
    """Checks the checkpoints during verify's single walk: each one's Merkle root over the record
    hashes recomputed from the records, its head hash, and its signature."""

    def __init__(self, session: Session, public_keys: Iterable[Ed25519PublicKey], result: "VerifyResult") -> None:
        self.result = result
        self.keys = {key_id(key): key for key in public_keys}
        self.pending = [
            {"id": row.id, "seq_from": row.seq_from, "seq_to": row.seq_to, "head_hash": row.head_hash,
             "merkle_root": row.merkle_root, "signature": row.signature, "key_id": row.key_id,
             "created_at": row.created_at}
            for row in session.execute(select(_checkpoints).order_by(_checkpoints.c.seq_from, _checkpoints.c.id))]
        self.open: list[tuple[dict[str, Any], MerkleBuilder]] = []
        self._next = 0
        if not self.pending:
            result.warnings.append("no checkpoint: the chain is not covered by any signature")
        elif not self.keys:
            result.warnings.append("checkpoint signatures not checked: no public key "
                                   "(configure AUDIT_SIGNING_KEY or pass --public-key)")
        for checkpoint in self.pending:
            self._check_signature(checkpoint)

    def _check_signature(self, checkpoint: dict[str, Any]) -> None:
        if not self.keys:
            return
        key = self.keys.get(checkpoint["key_id"])
        if key is None:
            self.result.add(Problem("checkpoint-key", f"checkpoint {checkpoint['id']} (seq {checkpoint['seq_from']}.."
                                                      f"{checkpoint['seq_to']}) is signed by an unknown key "
                                                      f"{checkpoint['key_id'][:16]}", checkpoint["seq_from"]))
            return
        message = statement_bytes(**{name: checkpoint[name] for name in (
            "seq_from", "seq_to", "head_hash", "merkle_root", "key_id", "created_at")})
        try:
            key.verify(bytes.fromhex(checkpoint["signature"]), message)
        except (InvalidSignature, ValueError):
            self.result.add(Problem("checkpoint-signature", f"checkpoint {checkpoint['id']} (seq "
                                                            f"{checkpoint['seq_from']}..{checkpoint['seq_to']}) has "
                                                            f"an invalid signature", checkpoint["seq_from"]))
            return
        self.result.signatures_checked += 1

    def add(self, seq: int, digest: str) -> None:
        while self._next < len(self.pending) and self.pending[self._next]["seq_from"] <= seq:
            checkpoint = self.pending[self._next]
            self._next += 1
            if checkpoint["seq_from"] == seq:
                self.open.append((checkpoint, MerkleBuilder()))
            else:  # its first links are missing: skip_to() passed over them
                self._fail(checkpoint, "checkpoint-root", "links of its interval are missing")
        if not self.open:
            return
        still_open = []
        for checkpoint, builder in self.open:
            builder.add_hex(digest)
            if seq < checkpoint["seq_to"]:
                still_open.append((checkpoint, builder))
                continue
            self._close(checkpoint, builder, digest)
        self.open = still_open

    def skip_to(self, seq: int) -> None:
        """Links before `seq` are missing: the open intervals cannot match."""
        for checkpoint, _ in self.open:
            self._fail(checkpoint, "checkpoint-root", "links of its interval are missing")
        self.open = []

    def _close(self, checkpoint: dict[str, Any], builder: MerkleBuilder, head_digest: str) -> None:
        self.result.checkpoints += 1
        if builder.root_hex() != checkpoint["merkle_root"]:
            self._fail(checkpoint, "checkpoint-root", "the Merkle root of the records in its interval does not "
                                                      "match (a record in it was changed, added or removed)",
                       counted=True)
        elif head_digest != checkpoint["head_hash"]:
            self._fail(checkpoint, "checkpoint-head", "the chain's hash at its end does not match", counted=True)

    def _fail(self, checkpoint: dict[str, Any], kind: str, why: str, counted: bool = False,
              seq: int | None = None) -> None:
        if not counted:
            self.result.checkpoints += 1
        self.result.add(Problem(kind, f"checkpoint {checkpoint['id']} (seq {checkpoint['seq_from']}.."
                                      f"{checkpoint['seq_to']}): {why}", seq or checkpoint["seq_from"],
                                position=seq or checkpoint["seq_to"]))

    def finish(self, head_seq: int) -> None:
        for checkpoint, _ in self.open:
            self._fail(checkpoint, "checkpoint-beyond-head", f"the chain ends at seq {head_seq}, before the "
                                                             f"checkpoint's end (records removed at the end)", seq=head_seq + 1)
        for checkpoint in self.pending[self._next:]:
            self._fail(checkpoint, "checkpoint-beyond-head", f"the chain ends at seq {head_seq}, before the "
                                                             f"checkpoint's start (records removed at the end)", seq=head_seq + 1)
        self.open = []
