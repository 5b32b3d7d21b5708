"""The application catalogue, read from config/applications.toml."""
from __future__ import annotations

import enum
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
DEFAULT_CATALOGUE = CONFIG_DIR / "applications.toml"


class Tier(enum.Enum):
    FREE = "free"
    PASSWORD = "password"
    CERTIFICATE = "certificate"


class PortalKind(enum.Enum):
    SOCIAL_SECURITY = "social_security"
    FEDERAL = "federal"
    INTERNAL = "internal"


# Codes of the portal's own functions (see [[function]] in the catalogue).
ACCESS_MANAGEMENT = "toegangsbeheer"
PORTAL_ADMINISTRATION = "portaalbeheer"


@dataclass(frozen=True)
class Application:
    code: str
    portal: PortalKind
    tier: Tier
    employer_only: bool
    names: dict[str, str]
    grantable: bool = True

    def name(self, locale: str = "nl") -> str:
        return self.names.get(locale) or self.names["nl"]


class Catalogue:
    def __init__(self, applications: list[Application]) -> None:
        self._by_code = {app.code: app for app in applications}

    def get(self, code: str) -> Application | None:
        return self._by_code.get(code)

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def grantable(self) -> list[Application]:
        """Applications a right can be granted on (not free, not the portal's own functions)."""
        return [a for a in self._by_code.values() if a.grantable and a.tier is not Tier.FREE]

    def applications(self) -> list[Application]:
        return [a for a in self._by_code.values() if a.portal is not PortalKind.INTERNAL]


def parse_catalogue(path: Path) -> Catalogue:
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    apps = [
        Application(
            code=entry["code"],
            portal=PortalKind(entry["portal"]),
            tier=Tier(entry["tier"]),
            employer_only=bool(entry["employer_only"]),
            names=dict(entry["name"]),
        )
        for entry in data.get("application", [])
    ]
    apps += [
        Application(code=entry["code"], portal=PortalKind.INTERNAL, tier=Tier.PASSWORD,
                    employer_only=False, names=dict(entry["name"]), grantable=False)
        for entry in data.get("function", [])
    ]
    codes = [a.code for a in apps]
    if len(codes) != len(set(codes)):
        raise ValueError(f"duplicate application code in {path}")
    return Catalogue(apps)


@lru_cache(maxsize=4)
def load_catalogue(path: str | None = None) -> Catalogue:
    return parse_catalogue(Path(path) if path else DEFAULT_CATALOGUE)
