"""A copy of every chained record outside the database, written after the commit only.

AUDIT_SINK = "jsonl:/path/file.jsonl": each link is appended as one line, the JSON object that its
hash covers plus the hash itself (audit/chain.py; same canonical encoding, so that an auditor can
recompute every hash and follow the chain from the file alone):

    {"prev_hash":"…","record":{…},"record_hash":"…","seq":17,"v":1}

The file is opened with O_APPEND for each commit and a commit's lines go out in one write (several
processes append whole lines); AUDIT_SINK_FSYNC makes each commit wait for the disk.
AUDIT_SINK = "syslog": each line is sent to the local syslog (facility authpriv, ident portal-audit).

A record rolled back never reaches the sink: the lines are taken in the session's after_commit event
(root transaction only) from the links the chain hook wrote in that transaction. A failing sink is
logged and never fails the request: the database stays the reference.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterable, Protocol

from sqlalchemy import event
from sqlalchemy.orm import Session

from audit.chain import Link, _encoder, take_chained
from audit.settings import settings_of

log = logging.getLogger(__name__)


class Sink(Protocol):
    def write(self, lines: list[str]) -> None: ...


class JsonLinesSink:
    def __init__(self, path: str | Path, *, fsync: bool = False) -> None:
        self.path = Path(path)
        self.fsync = fsync

    def write(self, lines: list[str]) -> None:
        data = "".join(line + "\n" for line in lines).encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)

    def __repr__(self) -> str:
        return f"jsonl:{self.path}"


class SyslogSink:
    def __init__(self) -> None:
        import syslog

        self._syslog = syslog
        syslog.openlog("portal-audit", 0, syslog.LOG_AUTHPRIV)

    def write(self, lines: list[str]) -> None:
        for line in lines:
            self._syslog.syslog(self._syslog.LOG_INFO, line)

    def __repr__(self) -> str:
        return "syslog"


def sink_from_spec(spec: str, *, fsync: bool = False) -> Sink | None:
    spec = spec.strip()
    if not spec:
        return None
    if spec == "syslog":
        return SyslogSink()
    if spec.startswith("jsonl:") and spec[len("jsonl:"):].strip():
        path = Path(spec[len("jsonl:"):].strip())
        if not path.parent.is_dir():
            raise ValueError(f"AUDIT_SINK: directory {path.parent} does not exist")
        return JsonLinesSink(path, fsync=fsync)
    raise ValueError(f'AUDIT_SINK must be "", "jsonl:/path/file.jsonl" or "syslog", not {spec!r}')


def sink_lines(links: Iterable[Link]) -> list[str]:
    return [_encoder.encode(link.as_document()) for link in links]


@event.listens_for(Session, "after_commit")
def _ship_after_commit(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint released: the transaction may still roll back
        return
    links = take_chained(session)
    sink = settings_of(session).sink
    if not links or sink is None:
        return
    try:
        sink.write(sink_lines(links))
    except Exception:  # noqa: BLE001 - the request must not fail for its copy
        log.exception("audit sink %r: %d records not written (seq %d..%d)", sink, len(links), links[0].seq,
                      links[-1].seq)
