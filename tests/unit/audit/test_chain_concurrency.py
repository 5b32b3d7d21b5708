"""Several processes, each with its own engine, write audit records to PostgreSQL at once: afterwards
the chain verifies, its seqs are 1..N with no gap and no fork, every record has its link, and the
automatic checkpoints tile the chain without overlap.

PostgreSQL only: SQLite serialises writers with BEGIN IMMEDIATE (one writer at a time by
construction), and a file shared by processes adds nothing the single-process tests do not show."""
from __future__ import annotations

import multiprocessing

import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from audit.chain import verify
from audit.models import AuditRecord, ChainLink, Checkpoint
from tests.unit.mandates.isolated_db import backend, isolated_engine

PROCESSES = 4
RECORDS_EACH = 150
PER_COMMIT = 3
EVERY = 40


def _writer(url: str, schema: str, key_pem: bytes, name: str, start, results) -> None:
    from audit.operations import RequestContext, record
    from audit.settings import SETTINGS_KEY, AuditSettings
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from db import import_all_models, make_engine

    import_all_models()  # a spawned process starts empty: the mapper needs every table the records refer to

    engine = make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    settings = AuditSettings(signing_key=load_pem_private_key(key_pem, None), checkpoint_every=EVERY)
    ctx = RequestContext(actor_label=name)
    try:
        start.wait(60)
        with Session(engine) as session:
            session.info[SETTINGS_KEY] = settings
            for n in range(RECORDS_EACH):
                record(session, ctx, action="test.concurrent", outcome="success", details={"writer": name, "n": n})
                if n % PER_COMMIT == PER_COMMIT - 1:
                    session.commit()
            session.commit()
        results.put((name, None))
    except Exception as error:  # noqa: BLE001 - reported to the parent
        results.put((name, repr(error)))
    finally:
        engine.dispose()


@pytest.fixture
def private_engine(database_url, tmp_path):
    if backend(database_url) != "postgresql":
        pytest.skip("concurrent writers are a PostgreSQL matter: SQLite serialises them with BEGIN IMMEDIATE")
    with isolated_engine(database_url, tmp_path, "chainrace") as engine:
        yield engine


def test_concurrent_processes_build_one_chain(private_engine, database_url, signing_key):
    schema = private_engine.connect().execute(text("SELECT current_schema()")).scalar()
    key_pem = signing_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
    spawn = multiprocessing.get_context("spawn")
    start, results = spawn.Event(), spawn.Queue()
    workers = [spawn.Process(target=_writer, args=(database_url, schema, key_pem, f"w{n}", start, results))
               for n in range(PROCESSES)]
    for worker in workers:
        worker.start()
    start.set()
    outcomes = dict(results.get(timeout=300) for _ in workers)
    for worker in workers:
        worker.join(60)
    assert outcomes == {f"w{n}": None for n in range(PROCESSES)}

    total = PROCESSES * RECORDS_EACH
    with Session(private_engine) as session:
        seqs = list(session.scalars(select(ChainLink.seq).order_by(ChainLink.seq)))
        assert seqs == list(range(1, total + 1))
        assert session.scalar(select(func.count(func.distinct(ChainLink.record_id)))) == total
        assert session.scalar(select(func.count()).select_from(AuditRecord)) == total
        # The writers interleaved (else the test proved nothing about concurrency).
        writers_in_order = [d["writer"] for d in session.scalars(
            select(AuditRecord.details).join(ChainLink, ChainLink.record_id == AuditRecord.id).order_by(ChainLink.seq))]
        switches = sum(a != b for a, b in zip(writers_in_order, writers_in_order[1:]))
        assert switches >= PROCESSES - 1
        intervals = [(c.seq_from, c.seq_to) for c in session.scalars(select(Checkpoint).order_by(Checkpoint.seq_to))]
        assert intervals == [(n * EVERY + 1, (n + 1) * EVERY) for n in range(total // EVERY)]
        result = verify(session, public_keys=[signing_key.public_key()])
    assert result.ok, result.report()
    assert (result.links, result.records, result.signatures_checked) == (total, total, total // EVERY)
