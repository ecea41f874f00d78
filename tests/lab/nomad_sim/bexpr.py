"""A small subset of go-bexpr, the `?filter=` language, evaluated on rendered
JSON: `Sel == "v"`, `!=`, `contains`, `not contains`, `matches`, `"v" in Sel`,
`Sel is empty`, `Sel is not empty`, `and`, `or`, `not`, parentheses.
Selectors are dotted paths (`NodePool`, `Meta.rack`, `Attributes["os.name"]`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .errors import ApiError

Predicate = Callable[[dict[str, Any]], bool]

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>"(?:[^"\\]|\\.)*"|`[^`]*`)
    | (?P<op>==|!=|\(|\)|\[|\]|\.)
    | (?P<num>-?\d+(?:\.\d+)?)
    | (?P<word>[A-Za-z_][A-Za-z0-9_\-]*)
    )""",
    re.VERBOSE,
)
_MISSING = object()


def _fail(message: str) -> ApiError:
    return ApiError(400, f"failed to read filter expression: {message}")


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text.rstrip()):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise _fail(f"1:{pos + 1} ({pos}): no match found")
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "str":
            value = value[1:-1].replace('\\"', '"')
        tokens.append((kind, value))
        pos = match.end()
    return tokens


def _lookup(obj: Any, path: list[str]) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return _MISSING
        obj = obj[key]
    return obj


def _equals(field: Any, value: str) -> bool:
    if isinstance(field, bool):
        return value.lower() == str(field).lower()
    if isinstance(field, int | float):
        try:
            return float(value) == float(field)
        except ValueError:
            return False
    return field is not None and str(field) == value


def _contains(field: Any, value: str) -> bool:
    if isinstance(field, str):
        return value in field
    if isinstance(field, dict):
        return value in field
    if isinstance(field, list):
        return any(_equals(item, value) for item in field)
    return False


def _empty(field: Any) -> bool:
    return field is None or (isinstance(field, str | list | dict) and len(field) == 0)


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self, offset: int = 0) -> tuple[str, str]:
        at = self.pos + offset
        return self.tokens[at] if at < len(self.tokens) else ("end", "")

    def take(self) -> tuple[str, str]:
        token = self.peek()
        self.pos += 1
        return token

    def expect(self, value: str) -> None:
        if self.take()[1] != value:
            raise _fail(f"expected {value!r}")

    def parse(self) -> Predicate:
        pred = self.expr()
        if self.peek()[0] != "end":
            raise _fail(f"unexpected {self.peek()[1]!r}")
        return pred

    def expr(self) -> Predicate:
        left = self.term()
        while self.peek() == ("word", "or"):
            self.take()
            right = self.term()
            left = (lambda a, b: lambda o: a(o) or b(o))(left, right)
        return left

    def term(self) -> Predicate:
        left = self.factor()
        while self.peek() == ("word", "and"):
            self.take()
            right = self.factor()
            left = (lambda a, b: lambda o: a(o) and b(o))(left, right)
        return left

    def factor(self) -> Predicate:
        if self.peek() == ("word", "not"):
            self.take()
            inner = self.factor()
            return lambda o: not inner(o)
        if self.peek() == ("op", "("):
            self.take()
            inner = self.expr()
            self.expect(")")
            return inner
        return self.comparison()

    def value(self) -> str:
        kind, value = self.take()
        if kind not in ("str", "num", "word"):
            raise _fail(f"expected a value, got {value!r}")
        return value

    def selector(self) -> list[str]:
        kind, first = self.take()
        if kind != "word":
            raise _fail(f"expected a selector, got {first!r}")
        path = [first]
        while self.peek() in (("op", "."), ("op", "[")):
            if self.take()[1] == ".":
                path.append(self.take()[1])
            else:
                path.append(self.value())
                self.expect("]")
        return path

    def comparison(self) -> Predicate:
        if self.peek()[0] in ("str", "num"):
            needle = self.value()
            self.expect("in")
            path = self.selector()
            return lambda o: _contains(_lookup(o, path), needle)
        path = self.selector()
        op = self.take()[1]
        if op == "is":
            negate = self.peek() == ("word", "not")
            if negate:
                self.take()
            self.expect("empty")
            return lambda o: _empty(_lookup(o, path)) != negate
        negate = op == "not"
        if negate:
            op = self.take()[1]
        return _binary(path, op, self.value(), negate)


def _binary(path: list[str], op: str, value: str, negate: bool) -> Predicate:
    tests: dict[str, Callable[[Any], bool]] = {
        "==": lambda f: _equals(f, value),
        "!=": lambda f: not _equals(f, value),
        "contains": lambda f: _contains(f, value),
        "matches": lambda f: isinstance(f, str) and re.search(value, f) is not None,
        "in": lambda f: _contains(f, value),
    }
    if op not in tests:
        raise _fail(f"unknown operator {op!r}")
    check = tests[op]

    def predicate(obj: dict[str, Any]) -> bool:
        field = _lookup(obj, path)
        return field is not _MISSING and check(field) != negate

    return predicate


def compile_filter(text: str) -> Predicate:
    return _Parser(text).parse()
