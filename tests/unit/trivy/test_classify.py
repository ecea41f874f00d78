"""Classifying Trivy client failures from the exact texts Trivy prints.

The strings are the ones in ../shared/notes/trivy-nomad-consul.md section 1.4.
"""

from __future__ import annotations

import pytest

from infraops.trivy.classify import classify_failure, fatal_message
from infraops.trivy.models import FailureKind

TS = "2026-12-03T03:00:01.123Z"
CHAIN = "run error: image scan error: scan error: "
POST = 'Post "http://trivy:4954/twirp/trivy.cache.v1.Cache/MissingBlobs": '
MISSING = (
    f"{CHAIN}scan failed: failed analysis: unable to get missing layers: unable to "
    f"fetch missing layers: twirp error internal: failed to do request: {POST}"
)
NOT_FOUND_HEAD = (
    f"{CHAIN}unable to initialize a scan service: unable to initialize container "
    'image: unable to find the specified image "x:1" in ["docker" "containerd" '
    '"podman" "remote"]: 4 errors occurred:'
)
LOCAL_DAEMONS = [
    "\t* docker error: unable to inspect the image (x:1): Cannot connect to the "
    "Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
    "\t* containerd error: containerd socket not found: /run/containerd/containerd.sock",
    "\t* podman error: unable to initialize Podman client: no podman socket found: "
    "stat podman/podman.sock: no such file or directory",
]


def fatal(message: str, *block: str, label: bool = True) -> str:
    head = f"{TS}\tINFO\t[vuln] Vulnerability scanning is enabled\n"
    level = "FATAL\tFatal error\t" if label else "FATAL\t"
    return head + f"{TS}\t{level}{message}\n" + "".join(f"{b}\n" for b in block)


def not_found(remote: str) -> str:
    return fatal(NOT_FOUND_HEAD, *LOCAL_DAEMONS, f"\t* remote error: {remote}")


@pytest.mark.parametrize(
    ("stderr", "kind", "reason"),
    [
        (
            fatal(MISSING + "dial tcp 10.0.0.5:4954: connect: connection refused"),
            FailureKind.TRANSIENT,
            "server-unreachable",
        ),
        (
            fatal(MISSING + "dial tcp: lookup trivy: no such host"),
            FailureKind.TRANSIENT,
            "server-unreachable",
        ),
        (
            fatal(MISSING + "read: connection reset by peer"),
            FailureKind.TRANSIENT,
            "connection-reset",
        ),
        (fatal(MISSING + "EOF"), FailureKind.TRANSIENT, "connection-reset"),
        (
            fatal(MISSING + "context deadline exceeded"),
            FailureKind.TRANSIENT,
            "timeout",
        ),
        (
            fatal(
                f"{CHAIN}scan failed: failed analysis: analyze error: analyzer timed "
                "out: context deadline exceeded"
            ),
            FailureKind.TRANSIENT,
            "timeout",
        ),
        # Old format (issue trivy #2286): no label, no "run error:".
        (
            "WARN\tIncrease --timeout value\nFATAL\tscan error: image scan failed: "
            "failed analysis: analyze error: timeout: context deadline exceeded\n",
            FailureKind.TRANSIENT,
            "timeout",
        ),
        # Verbatim from trivy-operator #1031 (older format).
        (
            "2023-03-15T10:50:25.082Z\tFATAL\timage scan error: scan error: scan failed: "
            "failed analysis: unable to get missing layers: unable to fetch missing "
            'layers: twirp error internal: failed to do request: Post "http://trivy-'
            'service.trivy-operator:4954/twirp/trivy.cache.v1.Cache/MissingBlobs": dial '
            "tcp 10.244.177.22:4954: connect: connection refused\n",
            FailureKind.TRANSIENT,
            "server-unreachable",
        ),
        (
            fatal(
                f"{CHAIN}scan failed: scan failed: failed to detect vulnerabilities via "
                "RPC: twirp error unavailable: Error from intermediary with HTTP status "
                'code 503 "Service Unavailable"'
            ),
            FailureKind.TRANSIENT,
            "server-unavailable",
        ),
        (
            not_found(
                "GET https://index.docker.io/v2/library/x/manifests/1: "
                "MANIFEST_UNKNOWN: manifest unknown; unknown tag=1"
            ),
            FailureKind.PERMANENT,
            "manifest-unknown",
        ),
        (
            not_found(
                "GET https://index.docker.io/v2/library/x/manifests/sha256:0: "
                "UNAUTHORIZED: authentication required; [map[Action:pull Class: "
                "Name:library/x Type:repository]]"
            ),
            FailureKind.PERMANENT,
            "unauthorized",
        ),
        (
            not_found(
                "GET https://ghcr.io/v2/o/x/manifests/1: NAME_UNKNOWN: repository "
                "name not known to registry"
            ),
            FailureKind.PERMANENT,
            "name-unknown",
        ),
        (
            not_found("GET https://ecr/v2/x/manifests/1: DENIED: denied"),
            FailureKind.PERMANENT,
            "denied",
        ),
        (
            not_found(
                "GET https://index.docker.io/v2/library/x/manifests/1: "
                "TOOMANYREQUESTS: You have reached your pull rate limit."
            ),
            FailureKind.TRANSIENT,
            "registry-throttled",
        ),
        # The registry is down, not the Trivy server: no twirp marker.
        (
            not_found(
                'Get "https://registry.lab:5000/v2/": dial tcp 10.0.0.9:5000: '
                "connect: connection refused"
            ),
            FailureKind.TRANSIENT,
            "registry-unreachable",
        ),
        (
            fatal(
                f"{CHAIN}scan failed: scan failed: failed to detect vulnerabilities via "
                "RPC: twirp error unauthenticated: invalid token"
            ),
            FailureKind.CONFIG,
            "bad-server-token",
        ),
        (
            fatal(
                f"{CHAIN}scan failed: scan failed: failed to detect vulnerabilities via "
                "RPC: twirp error bad_route: Error from intermediary with HTTP status "
                'code 404 "Not Found"'
            ),
            FailureKind.CONFIG,
            "wrong-server-url",
        ),
        (
            fatal(
                f"{CHAIN}scan failed: scan failed: failed to detect vulnerabilities via "
                "RPC: twirp error internal: failed scan, openjdk:11-jre-slim: failed to "
                "apply layers: layer cache missing: sha256:abc"
            ),
            FailureKind.CONFIG,
            "server-cache-not-shared",
        ),
        (
            fatal(
                f"{CHAIN}scan failed: scan failed: failed to detect vulnerabilities via "
                "RPC: twirp error internal: failed scan, some-image:latest: failed to "
                "detect vulnerabilities: failed to scan application libraries: failed "
                "vulnerability detection of libraries: failed to new driver: "
                "unsupported type node-pkg"
            ),
            FailureKind.CONFIG,
            "client-server-version-skew",
        ),
        (
            fatal(
                f"{CHAIN}scan failed: failed analysis: analyze error: failed to analyze "
                "layer (sha256:1): post analysis error: post analysis error: Unable to "
                "initialize the Java DB: Java DB update failed: failed to download Java "
                'DB: Get "https://mirror.gcr.io/v2/": dial tcp: i/o timeout'
            ),
            FailureKind.TRANSIENT,
            "db-download-failed",
        ),
        (
            fatal(
                "init error: DB error: the version of DB schema doesn't match. Local DB: "
                "1, Expected: 2"
            ),
            FailureKind.PERMANENT,
            "db-error",
        ),
        (
            fatal(
                f"{CHAIN}unable to initialize a scan service: unable to initialize "
                "container image: failed to parse the image name: could not parse "
                "reference: Bad:Name"
            ),
            FailureKind.PERMANENT,
            "invalid-reference",
        ),
        (
            fatal("something nobody has seen before"),
            FailureKind.TRANSIENT,
            "unclassified",
        ),
    ],
)
def test_classification(stderr: str, kind: FailureKind, reason: str) -> None:
    found = classify_failure(1, stderr)

    assert (found.kind, found.reason) == (kind, reason)


def test_trap_local_daemon_errors_do_not_make_it_transient() -> None:
    """Every not-found lists 'connection refused'-like local daemon errors."""
    stderr = not_found(
        "GET https://index.docker.io/v2/library/x/manifests/1: MANIFEST_UNKNOWN: "
        "manifest unknown; unknown tag=1"
    )
    stderr = stderr.replace(
        "Is the docker daemon running?",
        "dial unix /var/run/docker.sock: connect: connection refused",
    )
    assert "connection refused" in stderr

    found = classify_failure(1, stderr)

    assert found.kind is FailureKind.PERMANENT
    assert "MANIFEST_UNKNOWN" in found.message  # the block is kept


def test_ansi_colour_is_stripped() -> None:
    stderr = (
        f"{TS}\t\x1b[31mFATAL\x1b[0m\tFatal error\t{MISSING}dial tcp 1.2.3.4:4954: "
        "connect: connection refused\n"
    )

    found = classify_failure(1, stderr)

    assert found.reason == "server-unreachable"
    assert "\x1b" not in found.message
    assert found.message.startswith("run error:")


def test_last_fatal_wins_and_debug_noise_is_ignored() -> None:
    stderr = (
        fatal("twirp error unauthenticated: invalid token")
        + f"{TS}\tDEBUG\tnoise\n"
        + fatal(MISSING + "EOF")
    )

    assert fatal_message(stderr).endswith("EOF")


def test_killed_by_signal_is_transient() -> None:
    found = classify_failure(-9, "")

    assert (found.kind, found.reason) == (FailureKind.TRANSIENT, "killed")


def test_no_fatal_line_uses_the_tail() -> None:
    found = classify_failure(
        1, "panic: runtime error: index out of range\n\ngoroutine 1\n"
    )

    assert "goroutine 1" in found.message
    assert found.kind is FailureKind.TRANSIENT
