"""The message types of the file channel. A type says which XML root it reads, which schema
validates it, which employer each item is about, what applying an item needs from the decision
point, and how an item is checked (without writing) and then applied.

Adding a message type (Dimona, DmfA...) is: a subclass of MessageType, an XSD in config/schemas,
and one line in default_registry()."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from lxml import etree
from sqlalchemy.orm import Session

from access.catalogue import CONFIG_DIR
from access.models import Enterprise
from audit.operations import RequestContext
from certificates.models import Certificate

SCHEMA_DIR = CONFIG_DIR / "schemas"


@dataclass(frozen=True)
class Item:
    """One item of a message: its position (from 1), the line it starts on, the employer it is
    about (a KBO number as written), and the type's own data."""

    number: int
    line: int | None
    employer_kbo: str
    data: dict[str, Any] = field(default_factory=dict)


class MessageType:
    """Base class of a message type; subclasses set the class attributes and implement the methods."""

    code: ClassVar[str]                 # stored as FileMessage.message_type
    namespace: ClassVar[str]
    root: ClassVar[str]                 # local name of the root element
    schema: ClassVar[str]               # file name in config/schemas
    # What applying an item is, asked of the decision point per employer on top of the channel's
    # own application (bestandsoverdracht, "send"); None when sending is all there is to it.
    application: ClassVar[str | None] = None
    action: ClassVar[str] = "send"

    @property
    def qualified_root(self) -> str:
        return f"{{{self.namespace}}}{self.root}"

    @property
    def schema_path(self) -> Path:
        return SCHEMA_DIR / self.schema

    def sender_kbo(self, root: etree._Element) -> str:
        """The KBO number of the sender the message names (the schema made sure there is one)."""
        raise NotImplementedError

    def items(self, root: etree._Element) -> list[Item]:
        raise NotImplementedError

    def check(self, session: Session, employer: Enterprise, item: Item) -> Any:
        """Everything that can refuse the item, without writing anything: raises a DomainError.
        Returns what apply() needs."""
        raise NotImplementedError

    def apply(self, session: Session, employer: Enterprise, item: Item, checked: Any, *, certificate: Certificate,
              by: RequestContext, reference: str) -> dict[str, Any]:
        """Apply a checked item; returns its line of the receipt (JSON)."""
        raise NotImplementedError


class Registry:
    def __init__(self, types: tuple[MessageType, ...] = ()) -> None:
        self._by_root: dict[str, MessageType] = {}
        self._by_code: dict[str, MessageType] = {}
        for message_type in types:
            self.register(message_type)

    def register(self, message_type: MessageType) -> None:
        if message_type.qualified_root in self._by_root or message_type.code in self._by_code:
            raise ValueError(f"message type {message_type.code} ({message_type.qualified_root}) is registered twice")
        if not message_type.schema_path.is_file():
            raise ValueError(f"message type {message_type.code}: no schema {message_type.schema_path}")
        self._by_root[message_type.qualified_root] = message_type
        self._by_code[message_type.code] = message_type

    def for_root(self, tag: str) -> MessageType | None:
        return self._by_root.get(tag)

    def get(self, code: str) -> MessageType | None:
        return self._by_code.get(code)

    def all(self) -> list[MessageType]:
        return list(self._by_code.values())


@lru_cache(maxsize=1)
def default_registry() -> Registry:
    from filechannel.repertory_changes import RepertoryChanges

    return Registry((RepertoryChanges(),))
