"""The configured trust list (PORTAL_TRUST_LIST, default config/trust-list.toml), read once and
read again when the file changes (an operator refreshing CRLs needs no restart)."""
from __future__ import annotations

import threading
import tomllib
from pathlib import Path

from flask import current_app

from certificates.validation import TrustList, load_trust_list

_lock = threading.Lock()
_cache: dict[str, tuple[float, TrustList]] = {}


def trust_list_path() -> Path:
    configured = current_app.config.get("TRUST_LIST")
    from portal import ROOT

    return Path(configured) if configured else ROOT / "config" / "trust-list.toml"


def current_trust_list() -> TrustList:
    path = trust_list_path()
    stamp = _stamp(path)
    with _lock:
        cached = _cache.get(str(path))
        if cached is not None and cached[0] == stamp:
            return cached[1]
        trust = load_trust_list(path)
        _cache[str(path)] = (stamp, trust)
        return trust


def _stamp(path: Path) -> tuple[int, ...]:
    # The CRLs change more often than the list itself: a refreshed file the list names counts too.
    return tuple(p.stat().st_mtime_ns if p.exists() else -1 for p in (path, *_named(path)))


def _named(path: Path) -> list[Path]:
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    return [path.parent / name for key in ("anchors", "intermediates", "crls", "ocsps") for name in data.get(key, [])]
