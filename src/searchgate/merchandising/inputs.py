"""Merchandising from outside and back out: documents and objects read from a request
or an import file (bad input is the project's InvalidInput naming the field), the form
a document is kept in, and the export file."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from searchgate.errors import InvalidInput
from searchgate.merchandising.document import OBJECT_MODELS, MerchandisingDocument
from searchgate.search.request import validation_to_input_error


def parse_document(data: Any) -> MerchandisingDocument:
    """A document from outside: InvalidInput naming the field when it is not one, or
    when it holds what its stored form cannot keep."""
    if not isinstance(data, dict):
        raise InvalidInput("a merchandising document is a JSON object", field="body")
    try:
        document = MerchandisingDocument.model_validate(data)
    except ValidationError as exc:
        raise validation_to_input_error(exc) from None
    storable(document)
    return document


def model_of(kind: str) -> type[BaseModel]:
    model = OBJECT_MODELS.get(kind)
    if model is None:
        kinds = ", ".join(OBJECT_MODELS)
        raise InvalidInput(f"unknown kind {kind!r} (kinds: {kinds})", field="kind")
    return model


def storable(document: MerchandisingDocument) -> dict[str, Any]:
    """The document as it is kept, once it is known to read back: a value JSON cannot
    hold (an infinite number, an integer past 64 bits) is refused before it is kept,
    rather than found unreadable later."""
    wire = document.wire()
    try:
        MerchandisingDocument.model_validate(orjson.loads(orjson.dumps(wire)))
    except (ValidationError, TypeError):
        raise InvalidInput(
            "the document holds a number JSON cannot keep (infinite, not a number, or "
            "an integer past 64 bits)",
            field="body",
        ) from None
    return wire


def document_file(document: MerchandisingDocument) -> bytes:
    """The document as an export file: indented, one field a line, so that a review
    in git shows each change on its own line."""
    return orjson.dumps(document.wire(), option=orjson.OPT_INDENT_2) + b"\n"
