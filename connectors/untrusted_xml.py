"""XML from outside, through defusedxml: DTDs, entities and external references refused, whole
documents or streamed element by element, and every way it can fail said as a ledger reason."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as safe_xml
from defusedxml import DefusedXmlException

from retrostride.warehouse.schema import DecodeError

_FORBID = {"forbid_dtd": True, "forbid_entities": True, "forbid_external": True}


#: What defusedxml and expat raise on a document they will not read.
XML_FAILURES = (DefusedXmlException, safe_xml.ParseError, LookupError, ValueError)


def xml_error(error: Exception, what: str) -> DecodeError:
    """The ledger's reason for an XML failure of `what` ("GPX", "TCX")."""
    if isinstance(error, DefusedXmlException):
        return DecodeError(f"{what} refused: it declares a DTD or entities (DTDs and entities are not allowed)")
    if isinstance(error, safe_xml.ParseError):
        line, column = getattr(error, "position", (None, None))
        return DecodeError(f"{what} is not well-formed XML: error at line {line}, column {column}")
    if isinstance(error, LookupError):  # an unknown encoding declared
        return DecodeError(
            f"{what} is not well-formed XML: it declares an unknown encoding ({str(error).rsplit(': ', 1)[-1]})"
        )
    return DecodeError(f"{what} is not well-formed XML: bytes that are not valid in its declared encoding")


def parse_untrusted_xml(data: bytes, what: str) -> Element:
    """The root element of `data`."""
    try:
        return safe_xml.fromstring(data, **_FORBID)
    except XML_FAILURES as error:
        raise xml_error(error, what) from None


def untrusted_events(path: Path, what: str) -> Iterator[tuple[str, Element]]:
    """("start" | "end", element) through the file, read as it goes: memory holds what the caller
    keeps of the tree, not the document."""
    try:  # only what the parser raises: the caller's own errors are raised in the caller, not here
        yield from safe_xml.iterparse(str(path), events=("start", "end"), **_FORBID)
    except XML_FAILURES as error:
        raise xml_error(error, what) from None
