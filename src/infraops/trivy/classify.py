"""Classifying a failed Trivy client run from its exit status and stderr.

The rules follow ../shared/notes/trivy-nomad-consul.md section 1.4. The trap:
a not-found error lists what every image source said, and without local
daemons the docker/containerd/podman lines hold "connection refused" and "no
such file or directory". Only the `remote error:` part decides, and a network
error there means the *registry* is down, not the Trivy server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from infraops.trivy.models import FailureKind

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_FATAL = re.compile(r"\bFATAL\b")
_IMAGE_CODES = (
    ("MANIFEST_UNKNOWN", "manifest-unknown"),
    ("manifest unknown", "manifest-unknown"),
    ("NAME_UNKNOWN", "name-unknown"),
    ("UNAUTHORIZED", "unauthorized"),
    ("DENIED", "denied"),
    ("NOT_FOUND", "image-not-found"),
)
_NETWORK = (
    "connection refused",
    "connection reset",
    "no such host",
    "i/o timeout",
    "EOF",
    "context deadline exceeded",
    "network is unreachable",
    "TLS handshake timeout",
)


@dataclass(frozen=True)
class Classification:
    kind: FailureKind
    reason: str
    message: str

    @property
    def retryable(self) -> bool:
        return self.kind is FailureKind.TRANSIENT


def fatal_message(stderr: str) -> str:
    """The last FATAL entry with its continuation lines, ANSI stripped.

    Falls back to the last non-empty lines when there is no FATAL line.
    """
    lines = _ANSI.sub("", stderr).replace("\r\n", "\n").split("\n")
    starts = [i for i, line in enumerate(lines) if _FATAL.search(line)]
    if not starts:
        tail = [line for line in lines if line.strip()][-3:]
        return "\n".join(tail).strip()
    start = starts[-1]
    block = [_after_level(lines[start])]
    for line in lines[start + 1 :]:
        if not line.strip():
            continue
        if line[:1].isspace():
            block.append(line.strip())
        else:
            break
    return "\n".join(block)


def _after_level(line: str) -> str:
    rest = _FATAL.split(line, maxsplit=1)[-1].lstrip("\t ")
    if rest.startswith("Fatal error"):
        rest = rest[len("Fatal error") :].lstrip("\t ")
    return rest.strip()


def classify_failure(exit_status: int, stderr: str) -> Classification:
    """Why the CLI failed, and whether trying again could help."""
    message = fatal_message(stderr) or f"trivy exited with status {exit_status}"
    if exit_status < 0:
        return Classification(
            FailureKind.TRANSIENT, "killed", f"trivy killed by signal {-exit_status}"
        )

    return Classification(*_classify(message), message=_shorten(message))


def _classify(message: str) -> tuple[FailureKind, str]:
    remote = _remote_part(message)
    if "failed to parse the image name" in message or "could not parse" in message:
        return FailureKind.PERMANENT, "invalid-reference"
    if remote is not None or "unable to find the specified image" in message:
        return _image_problem(remote or message)
    if "TOOMANYREQUESTS" in message:
        return FailureKind.TRANSIENT, "registry-throttled"
    if "twirp error unauthenticated" in message:
        return FailureKind.CONFIG, "bad-server-token"
    if "twirp error bad_route" in message or "twirp error malformed" in message:
        return FailureKind.CONFIG, "wrong-server-url"
    if "layer cache missing" in message:
        return FailureKind.CONFIG, "server-cache-not-shared"
    if "unsupported type" in message:
        return FailureKind.CONFIG, "client-server-version-skew"
    if "twirp error unavailable" in message:
        return FailureKind.TRANSIENT, "server-unavailable"
    if "DB error:" in message or "Java DB" in message or "vulnerability DB" in message:
        if any(marker in message for marker in _NETWORK):
            return FailureKind.TRANSIENT, "db-download-failed"
        return FailureKind.PERMANENT, "db-error"
    if "failed to do request" in message:
        return FailureKind.TRANSIENT, _server_network_reason(message)
    if (
        "context deadline exceeded" in message
        or "analyzer timed out" in message
        or "timeout:" in message
    ):
        return FailureKind.TRANSIENT, "timeout"
    if "connection refused" in message or "connection reset" in message:
        return FailureKind.TRANSIENT, _server_network_reason(message)
    return FailureKind.TRANSIENT, "unclassified"


def _remote_part(message: str) -> str | None:
    at = message.find("remote error:")
    if at < 0:
        return None
    return message[at:].split("\n", 1)[0]


def _image_problem(remote: str) -> tuple[FailureKind, str]:
    if "TOOMANYREQUESTS" in remote:
        return FailureKind.TRANSIENT, "registry-throttled"
    for code, reason in _IMAGE_CODES:
        if code in remote:
            return FailureKind.PERMANENT, reason
    if any(marker in remote for marker in _NETWORK):
        return FailureKind.TRANSIENT, "registry-unreachable"
    return FailureKind.PERMANENT, "image-not-found"


def _server_network_reason(message: str) -> str:
    if "connection refused" in message or "no such host" in message:
        return "server-unreachable"
    if "connection reset" in message or message.rstrip().endswith("EOF"):
        return "connection-reset"
    if "deadline exceeded" in message or "i/o timeout" in message:
        return "timeout"
    return "server-request-failed"


def _shorten(message: str, limit: int = 2000) -> str:
    return message if len(message) <= limit else message[: limit - 3] + "..."
