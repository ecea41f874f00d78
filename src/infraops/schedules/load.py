"""Reading declarations: `schedules/*.json`, or Terraform/Terragrunt HCL.

JSON: one file per schedule, named `<id>.json`, holding one object with the
fields of `Declaration` (the same object Terraform reads with
`jsondecode(file(...))`).

HCL (`--terraform PATH`, a file or a directory searched recursively for .tf,
.hcl and .tfvars files, skipping hidden directories such as .terraform and
.terragrunt-cache). These shapes are read; everything else in the files is
ignored:

1. `resource "temporal_schedule" "<label>" { schedule_id = "<id>" ... }`, with
   the declaration's fields as attributes (`id` may stand for `schedule_id`);
2. a map keyed by schedule id, whose values hold the same fields (an `id`
   inside must match its key), found in any of
   `locals { schedules = { ... } }`,
   `variable "schedules" { default = { ... } }`,
   a top-level `schedules = { ... }` (a .tfvars file) and
   `inputs = { schedules = { ... } }` (terragrunt.hcl).

Values must be literals. Three functions are evaluated, because modules use
them to carry these documents: `jsonencode(<literal>)` (its value is used as
is), `jsondecode(file("<path>"))` and `file("<path>")`, with `${path.module}`,
`${path.root}` and `${get_terragrunt_dir()}` meaning the file's directory.
Anything else (var.x, for expressions, for_each, count) is an error naming the
file, the schedule and the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from infraops.schedules.model import Declaration, DeclarationError

HCL_SUFFIXES = (".tf", ".hcl", ".tfvars")
RESOURCE_TYPE = "temporal_schedule"
_META = ("for_each", "count")
_PATH_VARS = re.compile(
    r"\$\{\s*(?:path\.module|path\.root|get_terragrunt_dir\(\))\s*\}"
)


@dataclass
class Declarations:
    """Declarations by id, in id order, with the file each came from."""

    by_id: dict[str, Declaration] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Declaration]:
        return iter(self.by_id[key] for key in sorted(self.by_id))

    def __len__(self) -> int:
        return len(self.by_id)


def load_directory(directory: Path) -> Declarations:
    """Every `*.json` declaration in `directory`; all problems at once."""
    if not directory.is_dir():
        raise DeclarationError(
            [
                f"{directory}: not a directory of declarations; run from the "
                "repository root or pass --dir (or set INFRAOPS_SCHEDULES_DIR)"
            ]
        )
    problems: list[str] = []
    found = Declarations()
    files = sorted(directory.glob("*.json"))
    if not files:
        raise DeclarationError([f"{directory}: no *.json declarations in it"])
    for path in files:
        try:
            document = json.loads(path.read_text())
        except OSError as error:
            problems.append(f"{path}: cannot read it: {error.strerror}")
            continue
        except UnicodeDecodeError:
            problems.append(f"{path}: not UTF-8 text; expected a JSON document")
            continue
        except json.JSONDecodeError as error:
            problems.append(
                f"{path}: not valid JSON (line {error.lineno}, column "
                f"{error.colno}: {error.msg})"
            )
            continue
        if not isinstance(document, dict):
            problems.append(f"{path}: expected one JSON object")
            continue
        if document.get("id") != path.stem:
            problems.append(
                f"{path}: its id must be the file's name, {path.stem!r} "
                f"(found {document.get('id')!r})"
            )
            continue
        _add(found, document, str(path), problems)
    if problems:
        raise DeclarationError(problems, found)
    return found


def load_terraform(path: Path) -> Declarations:
    """The schedules declared in HCL at `path` (a file or a directory)."""
    if path.is_dir():
        files = sorted(
            candidate
            for candidate in path.rglob("*")
            if candidate.suffix in HCL_SUFFIXES
            and candidate.is_file()
            and not any(
                part.startswith(".") for part in candidate.relative_to(path).parts
            )
        )
    elif path.is_file():
        files = [path]
    else:
        raise DeclarationError([f"--terraform {path}: no such file or directory"])
    problems: list[str] = []
    found = Declarations()
    for file in files:
        for source, document in _hcl_schedules(file, problems):
            _add(found, document, source, problems)
    if not found.by_id and not problems:
        problems.append(
            f"--terraform {path}: declares no schedules (read: resource "
            f'"{RESOURCE_TYPE}", locals/variable "schedules", schedules = '
            "{...} and inputs = { schedules = {...} })"
        )
    if problems:
        raise DeclarationError(problems, found)
    return found


def _add(
    found: Declarations, document: dict[str, Any], source: str, problems: list[str]
) -> None:
    try:
        declaration = Declaration.model_validate(document)
    except ValidationError as error:
        from infraops.config import describe_validation_error

        problems.append(f"{source}: {describe_validation_error(error)}")
        return
    if declaration.id in found.by_id:
        problems.append(
            f"{source}: schedule {declaration.id!r} is also declared in "
            f"{found.sources[declaration.id]}"
        )
        return
    found.by_id[declaration.id] = declaration
    found.sources[declaration.id] = source


class _Unsupported(ValueError):
    pass


def _hcl_schedules(
    file: Path, problems: list[str]
) -> Iterator[tuple[str, dict[str, Any]]]:
    import hcl2

    try:
        tree = hcl2.loads(
            file.read_text(),
            serialization_options=hcl2.SerializationOptions(
                with_comments=False, preserve_heredocs=False
            ),
        )
    except OSError as error:
        problems.append(f"{file}: cannot read it: {error.strerror}")
        return
    except UnicodeDecodeError:
        problems.append(f"{file}: not UTF-8 text; expected HCL")
        return
    except Exception as error:  # the parser raises several lark error types
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        problems.append(f"{file}: not valid HCL: {first_line or type(error).__name__}")
        return
    try:
        candidates = list(_candidates(tree, file))
    except _Unsupported as error:
        problems.append(f"{file}: {error}")
        return
    for where_in_file, entry, key_id in candidates:
        where = f"{file} ({where_in_file})"
        try:
            for meta in _META:
                if isinstance(entry, dict) and meta in entry:
                    raise _Unsupported(
                        f"{meta} is not evaluated; declare each schedule literally"
                    )
            document = _literal(entry, file)
            if not isinstance(document, dict):
                raise _Unsupported("expected an object of schedule fields")
            if key_id is None:  # a resource: schedule_id, or id for short
                if "schedule_id" in document:
                    document.pop("id", None)
                    document["id"] = document.pop("schedule_id")
            elif document.setdefault("id", key_id) != key_id:
                raise _Unsupported(
                    f"id {document['id']!r} differs from its key {key_id!r}"
                )
        except _Unsupported as error:
            problems.append(f"{where}: {error}")
            continue
        yield where, document


def _candidates(
    tree: dict[str, Any], file: Path
) -> Iterator[tuple[str, Any, str | None]]:
    """(where, raw entry, id from the map key) for every declared schedule."""
    for block in tree.get("resource", []):
        for kind, named in block.items():
            if _unquote_key(kind) != RESOURCE_TYPE or not isinstance(named, dict):
                continue
            for label, body in named.items():
                if isinstance(body, dict):
                    where = f'resource "{RESOURCE_TYPE}" "{_unquote_key(label)}"'
                    yield where, body, None
    maps: list[tuple[str, Any]] = []
    for block in tree.get("locals", []):
        if "schedules" in block:
            maps.append(("locals.schedules", block["schedules"]))
    for block in tree.get("variable", []):
        for name, body in block.items():
            if (
                _unquote_key(name) == "schedules"
                and isinstance(body, dict)
                and "default" in body
            ):
                maps.append(('variable "schedules" default', body["default"]))
    if "schedules" in tree and not isinstance(tree["schedules"], list):
        maps.append(("schedules", tree["schedules"]))
    inputs = tree.get("inputs")
    if isinstance(inputs, dict) and "schedules" in inputs:
        maps.append(("inputs.schedules", inputs["schedules"]))
    for where, mapping in maps:
        if not isinstance(mapping, dict):
            continue  # e.g. a for expression over files: not ours to evaluate
        for key, body in mapping.items():
            if key.startswith("__"):
                continue
            schedule_id = _unquote_key(key)
            yield f"{where}[{schedule_id!r}]", body, schedule_id


def _unquote_key(key: str) -> str:
    if len(key) >= 2 and key[0] == key[-1] == '"':
        try:
            return str(json.loads(key))
        except json.JSONDecodeError:
            raise _Unsupported(f"cannot read the schedule id {key}") from None
    return key


def _literal(value: Any, file: Path) -> Any:
    """The Python value of a python-hcl2 node, evaluating only a few functions."""
    if isinstance(value, dict):
        return {
            _unquote_key(k): _literal(v, file)
            for k, v in value.items()
            if not k.startswith("__")
        }
    if isinstance(value, list):
        return [_literal(item, file) for item in value]
    if not isinstance(value, str):
        return value  # numbers, booleans, null
    if len(value) >= 2 and value[0] == value[-1] == '"':
        text = _string(value)
        if "${" in text.replace("$${", ""):
            raise _Unsupported(f"interpolation is not evaluated: {value}")
        return text.replace("$${", "${").replace("%%{", "%{")
    if value.startswith("${") and value.endswith("}"):
        return _expression(value[2:-1].strip(), file)
    raise _Unsupported(f"cannot read {value!r}")


def _string(quoted: str) -> str:
    try:
        return str(json.loads(quoted))
    except json.JSONDecodeError:
        return quoted[1:-1]


def _expression(text: str, file: Path) -> Any:
    call = re.fullmatch(r"(\w+)\((.*)\)((?:\.\w+)*)", text, flags=re.DOTALL)
    if call is None:
        raise _Unsupported(f"expression is not evaluated: {text}")
    value = _call(call[1], call[2].strip(), text, file)
    for name in call[3].split(".")[1:]:  # jsondecode(file("x.json")).input
        if not isinstance(value, dict) or name not in value:
            raise _Unsupported(f"{text}: no attribute {name!r}")
        value = value[name]
    return value


def _call(function: str, argument: str, text: str, file: Path) -> Any:
    if function == "jsonencode":
        return _literal(_parse_value(argument, file), file)
    if function == "jsondecode":
        inner = _literal(_parse_value(argument, file), file)
        if not isinstance(inner, str):
            raise _Unsupported(f"jsondecode needs a string: {text}")
        try:
            return json.loads(inner)
        except json.JSONDecodeError as error:
            raise _Unsupported(f"{text}: not valid JSON: {error.msg}") from None
    if function == "file":
        return _read_file(argument, file)
    raise _Unsupported(f"function {function}() is not evaluated: {text}")


def _parse_value(argument: str, file: Path) -> Any:
    import hcl2

    if re.fullmatch(r"file\((.*)\)", argument, flags=re.DOTALL):
        return json.dumps(_read_file(argument[5:-1].strip(), file))
    try:
        return hcl2.loads(
            f"value = {argument}\n",
            serialization_options=hcl2.SerializationOptions(with_comments=False),
        )["value"]
    except Exception:
        raise _Unsupported(f"cannot read {argument}") from None


def _read_file(argument: str, file: Path) -> str:
    if not (len(argument) >= 2 and argument[0] == argument[-1] == '"'):
        raise _Unsupported(f"file() needs a literal path: file({argument})")
    relative = _PATH_VARS.sub(".", _string(argument))
    if "${" in relative:
        raise _Unsupported(f"file() path is not evaluated: {argument}")
    target = (file.parent / relative).resolve()
    try:
        return target.read_text()
    except OSError as error:
        raise _Unsupported(f"file({argument}): {target}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise _Unsupported(f"file({argument}): {target}: not UTF-8 text") from None
