"""Normalising image references the way Docker and containerd read them.

`nginx` is `docker.io/library/nginx:latest`; `index.docker.io` is `docker.io`;
a first component with a dot, a colon or `localhost` is a registry (ports
included); a digest is kept and, being exact, wins over a tag for identity.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_REGISTRY = "docker.io"
_REGISTRY_ALIASES = {"index.docker.io": DEFAULT_REGISTRY}
_TRANSPORT = "docker://"
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}")
_HOST = re.compile(r"[A-Za-z0-9.-]+(?::[0-9]+)?|\[[0-9A-Fa-f:]+\](?::[0-9]+)?")
UNRESOLVED = re.compile(r"\$\{[^}]*\}?")


class InvalidReference(ValueError):
    """The text is not an image reference a registry could serve."""


@dataclass(frozen=True)
class Reference:
    registry: str
    path: str
    tag: str | None
    digest: str | None

    @property
    def repository(self) -> str:
        return f"{self.registry}/{self.path}"

    @property
    def canonical(self) -> str:
        """The identity: by digest when there is one, else by tag."""
        if self.digest:
            return f"{self.repository}@{self.digest}"
        return f"{self.repository}:{self.tag or 'latest'}"


def has_unresolved_variable(text: str) -> bool:
    return "${" in text


def normalise(text: str) -> Reference:
    """Parse `text` into its full form, or raise InvalidReference."""
    raw = text.strip()
    if raw.startswith(_TRANSPORT):
        raw = raw[len(_TRANSPORT) :]
    if not raw or any(c.isspace() for c in raw):
        raise InvalidReference(f"{text!r} is empty or contains whitespace")
    if has_unresolved_variable(raw):
        raise InvalidReference(f"{text!r} holds an unresolved ${{...}} variable")
    name, digest = raw, None
    if "@" in raw:
        name, _, digest = raw.partition("@")
        if not _DIGEST.fullmatch(digest):
            raise InvalidReference(f"{text!r} has a malformed digest")
        algorithm, _, hex_part = digest.partition(":")
        digest = f"{algorithm}:{hex_part.lower()}"
    tag = None
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise InvalidReference(f"{text!r} has a malformed tag")
    registry, path = _split_registry(name, text)
    for component in path.split("/"):
        if not _PATH_COMPONENT.fullmatch(component):
            raise InvalidReference(
                f"{text!r}: repository names are lower-case letters, digits and "
                "separators"
            )
    if tag is None and digest is None:
        tag = "latest"

    return Reference(registry=registry, path=path, tag=tag, digest=digest)


def _split_registry(name: str, text: str) -> tuple[str, str]:
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        if not _HOST.fullmatch(first):
            raise InvalidReference(f"{text!r} has a malformed registry host")
        registry = _REGISTRY_ALIASES.get(first.lower(), first.lower())
        path = rest
    else:
        registry, path = DEFAULT_REGISTRY, name
    if not path:
        raise InvalidReference(f"{text!r} names no repository")
    if registry == DEFAULT_REGISTRY and "/" not in path:
        path = f"library/{path}"

    return registry, path
