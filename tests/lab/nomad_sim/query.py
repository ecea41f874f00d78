"""Query-string handling shared by the read endpoints (note 2.3): blocking
`index`/`wait`, `stale`, `namespace`, `prefix`, `filter`, paging."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .bexpr import Predicate, compile_filter
from .errors import ApiError

MAX_WAIT = 300.0  # MaxBlockingRPCQueryTime; the docs' 10 minutes is wrong
STALE_ERROR = "Expect `true` or `false` for `stale` query string parameter"
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0}
_GO_UNITS |= {"m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_GO_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_GO_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def parse_go_duration(text: str) -> float:
    """time.ParseDuration, in seconds; ValueError when Go would refuse it."""
    body = text.lstrip("+-")
    if body == "0":
        return 0.0
    parts = list(_DURATION_PART.finditer(body))
    if not body or "".join(p.group(0) for p in parts) != body:
        raise ValueError(text)
    total = sum(float(p.group(1)) * _GO_UNITS[p.group(2)] for p in parts)
    return -total if text.startswith("-") else total


def parse_go_bool(text: str) -> bool:
    if text in _GO_TRUE:
        return True
    if text in _GO_FALSE:
        return False
    raise ValueError(text)


@dataclass
class QueryOptions:
    namespace: str = "default"
    min_index: int = 0
    wait: float = MAX_WAIT
    stale: bool = False
    prefix: str = ""
    filter: Predicate | None = None
    per_page: int = 0
    next_token: str = ""
    reverse: bool = False


def _first(query: Mapping[str, list[str]], name: str) -> str:
    return query.get(name, [""])[0]


def _parse_blocking(query: Mapping[str, list[str]], opts: QueryOptions) -> None:
    if wait := _first(query, "wait"):
        try:
            seconds = parse_go_duration(wait)
        except ValueError:
            raise ApiError(400, "Invalid wait time") from None
        opts.wait = MAX_WAIT if seconds <= 0 else min(seconds, MAX_WAIT)
    if index := _first(query, "index"):
        if not index.isascii() or not index.isdigit() or int(index) >= 2**64:
            raise ApiError(400, "Invalid index")
        opts.min_index = int(index)


def _parse_stale(query: Mapping[str, list[str]], opts: QueryOptions) -> None:
    if "stale" not in query:
        return
    value = _first(query, "stale")
    if value == "":
        opts.stale = True
        return
    try:
        opts.stale = parse_go_bool(value)
    except ValueError:
        raise ApiError(400, STALE_ERROR) from None


def namespace_of(query: Mapping[str, list[str]], headers: Mapping[str, str]) -> str:
    """?namespace= wins over X-Nomad-Namespace; the default is `default`."""
    return (
        _first(query, "namespace") or headers.get("x-nomad-namespace", "") or "default"
    )


def parse_query(
    query: Mapping[str, list[str]], headers: Mapping[str, str]
) -> QueryOptions:
    opts = QueryOptions(namespace=namespace_of(query, headers))
    _parse_blocking(query, opts)
    _parse_stale(query, opts)
    opts.prefix = _first(query, "prefix")
    per_page = _first(query, "per_page")
    if per_page.lstrip("-").isdigit():  # Nomad ignores values it cannot parse
        opts.per_page = int(per_page)
    opts.next_token = _first(query, "next_token")
    if filter_text := _first(query, "filter"):
        opts.filter = compile_filter(filter_text)
    try:
        opts.reverse = parse_go_bool(_first(query, "reverse") or "false")
    except ValueError:
        opts.reverse = False
    return opts


def apply_filter(
    items: list[dict[str, Any]], opts: QueryOptions
) -> list[dict[str, Any]]:
    if opts.filter is None:
        return items
    return [item for item in items if opts.filter(item)]


TokenKey = Callable[[str], Any]


def _at_or_after(key: Any, start: Any, opts: QueryOptions) -> bool:
    return bool(key <= start) if opts.reverse else bool(key >= start)


def paginate(
    items: list[dict[str, Any]],
    opts: QueryOptions,
    token_of: Callable[[dict[str, Any]], str],
    key_of_token: TokenKey,
) -> tuple[list[dict[str, Any]], str]:
    """Nomad's paginator: items are in token order; `next_token` is the token
    of the first item of the next page. Returns (page, next token or "")."""
    if opts.reverse:
        items = list(reversed(items))
    if opts.next_token:
        start = key_of_token(opts.next_token)
        items = [
            i for i in items if _at_or_after(key_of_token(token_of(i)), start, opts)
        ]
    if opts.per_page <= 0 or len(items) <= opts.per_page:
        return items, ""
    return items[: opts.per_page], token_of(items[opts.per_page])
