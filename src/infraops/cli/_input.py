"""Building a workflow's config from `--input` and command-line options."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from infraops.cli._errors import fail

M = TypeVar("M", bound=BaseModel)
MAX_INPUT = 1024 * 1024  # a config document, never more


def build_config(model: type[M], source: str | None, overrides: dict[str, Any]) -> M:
    """`source` (a JSON file, or - for stdin) with the given options on top.

    Options left at None were not given and do not override the document.
    """
    document: dict[str, Any] = {}
    if source is not None:
        document = _read_document(source)
    document.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return model.model_validate(document)
    except ValidationError as error:
        from infraops.config import describe_validation_error

        where = f"--input {source}" if source else "the options"
        raise fail(
            f"invalid {model.__name__} in {where}: {describe_validation_error(error)}"
        ) from None


def _read_document(source: str) -> dict[str, Any]:
    try:
        if source == "-":
            raw = sys.stdin.buffer.read(MAX_INPUT + 1)
        else:
            with Path(source).open("rb") as handle:
                raw = handle.read(MAX_INPUT + 1)
    except OSError as error:
        raise fail(f"--input {source}: cannot read it: {error.strerror}") from None
    if len(raw) > MAX_INPUT:
        raise fail(f"--input {source}: larger than {MAX_INPUT} bytes; not a config")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise fail(
            f"--input {source}: not UTF-8 text; expected a JSON document"
        ) from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise fail(
            f"--input {source}: not valid JSON (line {error.lineno}, "
            f"column {error.colno}: {error.msg})"
        ) from None
    if not isinstance(document, dict):
        raise fail(f"--input {source}: expected a JSON object of config fields")

    return document
