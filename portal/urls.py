"""Redirect targets taken from the request must stay on this site."""
from __future__ import annotations

from urllib.parse import urlsplit


def safe_local_target(target: str | None) -> str | None:
    """`target` if it is a path on this site, else None.

    Browsers drop tabs and newlines and read a backslash as a slash, so
    "/\t/evil.example" or "/\\evil.example" would leave the site: any control
    character, space or backslash disqualifies the target."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if any(ord(ch) < 0x21 or ch in "\\\x7f" for ch in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target
