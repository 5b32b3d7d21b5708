"""The audit trail's settings, carried by each session (no Flask here: the web layer and the CLI
build them from their configuration, see portal/database.py).

    AUDIT_SIGNING_KEY        path of the portal's Ed25519 private key (PEM) that signs checkpoints;
                             None: instance/audit_signing_key.pem if it exists (`make run` writes it;
                             not under TESTING); "": no key, no checkpoint
    AUDIT_CHECKPOINT_EVERY   an automatic checkpoint every that many links (0: off)
    AUDIT_CHECKPOINT_MINUTES and one at the first commit after that many minutes since the last
                             checkpoint (or the first link), covering the chain to its head (0: off);
                             `audit checkpoint` (cron) covers a portal that stops writing
    AUDIT_SINK               "" (off) | "jsonl:/path/file.jsonl" | "syslog"
    AUDIT_SINK_FSYNC         fsync the JSON Lines file after each commit's lines
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session

SETTINGS_KEY = "audit.settings"
DEFAULT_KEY_FILE = "audit_signing_key.pem"


@dataclass(frozen=True)
class AuditSettings:
    signing_key: Ed25519PrivateKey | None = None
    checkpoint_every: int = 0
    sink: Any = None  # audit.sink.Sink
    checkpoint_minutes: int = 0

    @classmethod
    def from_config(cls, config: Mapping[str, Any], instance_path: str | Path | None = None) -> "AuditSettings":
        from audit.checkpoints import load_private_key
        from audit.sink import sink_from_spec

        key_path = config.get("AUDIT_SIGNING_KEY")
        if key_path is None and instance_path is not None and not config.get("TESTING"):
            default = Path(instance_path) / DEFAULT_KEY_FILE
            key_path = str(default) if default.exists() else ""
        key = load_private_key(key_path) if key_path else None
        return cls(signing_key=key, checkpoint_every=int(config.get("AUDIT_CHECKPOINT_EVERY") or 0),
                   checkpoint_minutes=int(config.get("AUDIT_CHECKPOINT_MINUTES") or 0),
                   sink=sink_from_spec(config.get("AUDIT_SINK") or "", fsync=bool(config.get("AUDIT_SINK_FSYNC"))))


NO_SETTINGS = AuditSettings()


def settings_of(session: Session) -> AuditSettings:
    return session.info.get(SETTINGS_KEY, NO_SETTINGS)


def with_audit_settings(factory: Callable[[], Session], settings: AuditSettings) -> Callable[[], Session]:
    """A session factory whose sessions carry these settings (checkpoints, sink)."""

    def make_session() -> Session:
        session = factory()
        session.info[SETTINGS_KEY] = settings
        return session

    return make_session
