"""Parsing a received message safely and validating it against its XML schema.

The parser never resolves entities, never reads the network and keeps libxml2's size limits; a
message with a document type declaration is refused outright (no DTD, no entity, internal or
external, is ever needed by a message)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from lxml import etree


class XmlProblem(Exception):
    """The message is not acceptable XML: `code` is malformed-xml, doctype-forbidden or schema-invalid."""

    def __init__(self, code: str, detail: str, line: int | None = None) -> None:
        super().__init__(detail)
        self.code, self.detail, self.line = code, detail, line


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False,
                           dtd_validation=False, remove_pis=True, collect_ids=False)


class _Prolog(Exception):
    """Raised by _PrologTarget to stop reading: what the prolog had (a doctype or not)."""

    def __init__(self, doctype: bool) -> None:
        super().__init__(doctype)
        self.doctype = doctype


class _PrologTarget:
    """Reads up to the root element's start tag only: a DOCTYPE, which must come before it, is seen
    before any entity declaration of its internal subset is read (so before any expansion)."""

    def doctype(self, *args) -> None:
        raise _Prolog(True)

    def start(self, *args) -> None:
        raise _Prolog(False)

    def end(self, *args) -> None:
        pass

    def data(self, *args) -> None:
        pass

    def close(self) -> None:
        return None


def _has_doctype(content: bytes) -> bool:
    parser = etree.XMLParser(target=_PrologTarget(), resolve_entities=False, no_network=True, load_dtd=False)
    try:
        etree.fromstring(content, parser=parser)
    except _Prolog as prolog:
        return prolog.doctype
    except etree.XMLSyntaxError:
        return False  # the real parse reports it
    return False


def parse_message(content: bytes) -> etree._Element:
    """The message's root element. Raises XmlProblem."""
    if _has_doctype(content):
        raise XmlProblem("doctype-forbidden", "a message must not have a document type declaration (DOCTYPE): "
                                              "DTDs and entities are not accepted")
    try:
        tree = etree.fromstring(content, parser=_parser()).getroottree()
    except etree.XMLSyntaxError as error:
        line = error.lineno if error.lineno else None
        raise XmlProblem("malformed-xml", f"not well-formed XML: {error.msg}", line) from None
    docinfo = tree.docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise XmlProblem("doctype-forbidden", "a message must not have a document type declaration (DOCTYPE): "
                                              "DTDs and entities are not accepted")
    return tree.getroot()


@lru_cache(maxsize=16)
def load_schema(path: str) -> etree.XMLSchema:
    """A message type's XSD (configuration, trusted), parsed once."""
    document = etree.parse(str(Path(path)), parser=_parser())
    return etree.XMLSchema(document)


def validate(root: etree._Element, schema_path: str | Path) -> list[XmlProblem]:
    """Every schema error, with its line (an empty list: valid)."""
    schema = load_schema(str(schema_path))
    if schema.validate(root.getroottree()):
        return []
    return [XmlProblem("schema-invalid", entry.message, entry.line) for entry in schema.error_log]
