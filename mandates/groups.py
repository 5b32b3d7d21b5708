"""The groups of applications a mandate covers, read from config/mandate_groups.toml."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from access.catalogue import CONFIG_DIR, Catalogue, PortalKind, load_catalogue

DEFAULT_GROUPS = CONFIG_DIR / "mandate_groups.toml"


@dataclass(frozen=True)
class ApplicationGroup:
    code: str
    applications: tuple[str, ...]
    names: dict[str, str]
    secretariat_default: bool

    def name(self, locale: str = "nl") -> str:
        return self.names.get(locale) or self.names["nl"]


class Groups:
    def __init__(self, groups: list[ApplicationGroup]) -> None:
        self._by_code = {group.code: group for group in groups}
        self._group_of = {app: group for group in groups for app in group.applications}

    def get(self, code: str) -> ApplicationGroup | None:
        return self._by_code.get(code)

    def all(self) -> list[ApplicationGroup]:
        return list(self._by_code.values())

    def group_of(self, application: str) -> ApplicationGroup | None:
        return self._group_of.get(application)

    def secretariat_defaults(self) -> list[ApplicationGroup]:
        return [group for group in self._by_code.values() if group.secretariat_default]


def parse_groups(path: Path, catalogue: Catalogue) -> Groups:
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    groups = [
        ApplicationGroup(code=entry["code"], applications=tuple(entry["applications"]),
                         names=dict(entry["name"]), secretariat_default=bool(entry["secretariat_default"]))
        for entry in data.get("group", [])
    ]
    seen: set[str] = set()
    for group in groups:
        for app in group.applications:
            known = catalogue.get(app)
            if known is None or known.portal is PortalKind.INTERNAL:
                raise ValueError(f"{path}: group {group.code} names unknown application {app!r}")
            if app in seen:
                raise ValueError(f"{path}: application {app!r} is in two groups")
            seen.add(app)
    if len({g.code for g in groups}) != len(groups):
        raise ValueError(f"{path}: duplicate group code")
    return Groups(groups)


@lru_cache(maxsize=4)
def load_groups(path: str | None = None, catalogue_path: str | None = None) -> Groups:
    return parse_groups(Path(path) if path else DEFAULT_GROUPS, load_catalogue(catalogue_path))
