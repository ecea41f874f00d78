#!/usr/bin/env python3
"""A stand-in `trivy` executable: `trivy image` in client mode, stdlib only.

It behaves like the real client as ../shared/notes/trivy-nomad-consul.md
section 1 describes: the JSON report on stdout (or `--output`), log lines
`TIMESTAMP<TAB>LEVEL<TAB>message` on stderr, one FATAL line (plus the
multi-error block for image problems) and exit 1 on failure, exit 0 after a
complete report, `--exit-code N` when something was found. The image is
resolved before the server is contacted, as Trivy does.

What happens to an image is decided by the lab's Trivy server stub
(tests/lab/trivy_server.py), asked at `TRIVY_STUB_CONTROL` (set by the wrapper
script the stub writes). The Trivy server at `--server` is contacted for real
over HTTP: a closed port gives the connection-refused text, a wrong token the
twirp `unauthenticated` text, a URL that is not a Trivy server `bad_route`.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime

VALUE_FLAGS = {
    "--server",
    "--token-header",
    "--format",
    "-f",
    "--output",
    "-o",
    "--scanners",
    "--image-src",
    "--cache-dir",
    "--timeout",
    "--severity",
    "-s",
    "--exit-code",
    "--token",
}
BOOL_FLAGS = {"--quiet", "-q", "--debug", "-d", "--no-progress"}
CHAIN = "run error: image scan error: scan error: "
MISSING_BLOBS = "/twirp/trivy.cache.v1.Cache/MissingBlobs"
SCAN = "/twirp/trivy.scanner.v1.Scanner/Scan"
TIMEOUT_URL = "https://trivy.dev/latest/docs/references/troubleshooting/#timeout"


class Fatal(Exception):
    def __init__(self, message: str, block: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.block = block or []


class Stub:
    def __init__(self, argv: list[str]) -> None:
        self.options: dict[str, str] = {}
        self.flags: set[str] = set()
        self.args: list[str] = []
        self._parse(argv)
        self.quiet = bool(self.flags & {"--quiet", "-q"})

    def _parse(self, argv: list[str]) -> None:
        if not argv or argv[0] not in ("image", "i"):
            raise Fatal(f'unknown command {argv[0] if argv else ""!r} for "trivy"')
        rest = argv[1:]
        while rest:
            arg = rest.pop(0)
            name, eq, value = arg.partition("=")
            if name in VALUE_FLAGS:
                if not eq:
                    if not rest:
                        raise Fatal(f"flag needs an argument: {name}")
                    value = rest.pop(0)
                self.options[name.lstrip("-")] = value
            elif arg in BOOL_FLAGS:
                self.flags.add(arg)
            elif arg.startswith("-"):
                raise Fatal(f"flag error: unknown flag: {arg}")
            else:
                self.args.append(arg)
        if len(self.args) != 1:
            raise Fatal(f"accepts 1 arg(s), received {len(self.args)}")

    def option(self, *names: str, default: str = "") -> str:
        for name in names:
            if name in self.options:
                return self.options[name]
        return default

    # -- logging ------------------------------------------------------------

    def log(self, level: str, message: str) -> None:
        if self.quiet and level in ("INFO", "DEBUG"):
            return
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        sys.stderr.write(f"{stamp}\t{level}\t{message}\n")

    # -- the run ---------------------------------------------------------------

    def run(self) -> int:
        image = self.args[0]
        server = self.option("server")
        if not server:
            raise Fatal("stub supports client mode only: --server is required")
        if self.option("format", "f", default="table") != "json":
            raise Fatal("stub writes --format json only")
        timeout = parse_duration(self.option("timeout", default="5m0s"))
        deadline = time.monotonic() + timeout
        plan = self._control("resolve", image)
        outcome = plan.get("outcome", "ok")
        if plan.get("client_latency"):
            time.sleep(float(plan["client_latency"]))
        self.log("INFO", "[vuln] Vulnerability scanning is enabled")
        self._client_stage(image, outcome, deadline)
        report = self._server_stage(image, server, outcome, deadline)
        total = float(str(plan.get("total_latency") or 0))
        if total:
            time.sleep(max(0.0, total - process_age()))
        return self._write(image, outcome, report)

    def _client_stage(self, image: str, outcome: str, deadline: float) -> None:
        """Image resolution and local analysis: before the server is contacted."""
        if outcome == "bad_name":
            raise Fatal(
                f"{CHAIN}unable to initialize a scan service: unable to initialize "
                f"container image: failed to parse the image name: could not parse "
                f"reference: {image}"
            )
        registry_errors = {
            "not_found": "MANIFEST_UNKNOWN: manifest unknown; unknown tag={tag}",
            "unauthorized": (
                "UNAUTHORIZED: authentication required; [map[Action:pull Class: "
                "Name:{path} Type:repository]]"
            ),
            "name_unknown": "NAME_UNKNOWN: repository name not known to registry",
            "denied": "DENIED: requested access to the resource is denied",
            "throttled": (
                "TOOMANYREQUESTS: You have reached your pull rate limit. You may "
                "increase the limit by authenticating and upgrading: "
                "https://www.docker.com/increase-rate-limit"
            ),
        }
        if outcome in registry_errors or outcome == "registry_down":
            host, path, tag = registry_parts(image)
            if outcome == "registry_down":
                remote = (
                    f'Get "https://{host}/v2/": dial tcp 10.0.0.99:443: connect: '
                    "connection refused"
                )
            else:
                detail = registry_errors[outcome].format(tag=tag, path=path)
                remote = f"GET https://{host}/v2/{path}/manifests/{tag}: {detail}"
            self._image_missing(image, remote)
        if outcome == "analyzer_timeout":
            self.log("WARN", f"Provide a higher timeout value, see {TIMEOUT_URL}")
            raise Fatal(
                f"{CHAIN}scan failed: failed analysis: analyze error: analyzer "
                "timed out: context deadline exceeded"
            )
        if outcome == "java_db":
            raise Fatal(
                f"{CHAIN}scan failed: failed analysis: analyze error: failed to "
                "analyze layer (sha256:4f4fb700ef54461cfa02571ae0db9a0dc1e0cdb5577484a6d"
                "75e68dc38e8acc1): post analysis error: post analysis error: Unable "
                "to initialize the Java DB: Java DB update failed: failed to download "
                'Java DB: OCI repository error: Get "https://mirror.gcr.io/v2/": dial '
                "tcp: lookup mirror.gcr.io: i/o timeout"
            )
        if time.monotonic() > deadline:
            self._deadline()

    def _image_missing(self, image: str, remote: str) -> None:
        sources = self.option("image-src", default="docker,containerd,podman,remote")
        sources_list = [s.strip() for s in sources.split(",") if s.strip()]
        lines = {
            "docker": (
                f"docker error: unable to inspect the image ({image}): Cannot connect "
                "to the Docker daemon at unix:///var/run/docker.sock. Is the docker "
                "daemon running?"
            ),
            "containerd": (
                "containerd error: containerd socket not found: "
                "/run/containerd/containerd.sock"
            ),
            "podman": (
                "podman error: unable to initialize Podman client: no podman socket "
                "found: stat podman/podman.sock: no such file or directory"
            ),
            "remote": f"remote error: {remote}",
        }
        shown = " ".join(f'"{s}"' for s in sources_list)
        count = len(sources_list)
        noun = "error" if count == 1 else "errors"
        raise Fatal(
            f"{CHAIN}unable to initialize a scan service: unable to initialize "
            f'container image: unable to find the specified image "{image}" in '
            f"[{shown}]: {count} {noun} occurred:",
            [f"\t* {lines[s]}" for s in sources_list if s in lines],
        )

    def _server_stage(
        self, image: str, server: str, outcome: str, deadline: float
    ) -> bytes:
        self._post(
            server,
            MISSING_BLOBS,
            {"ArtifactID": "sha256:stub", "BlobIDs": ["sha256:stub"]},
            outcome,
            deadline,
            "scan failed: failed analysis: unable to get missing layers: unable to "
            "fetch missing layers: ",
        )
        return self._post(
            server,
            SCAN,
            {"Target": image, "ArtifactId": "sha256:stub"},
            outcome,
            deadline,
            "scan failed: scan failed: failed to detect vulnerabilities via RPC: ",
        )

    def _post(
        self,
        server: str,
        path: str,
        body: dict[str, object],
        outcome: str,
        deadline: float,
        chain: str,
    ) -> bytes:
        url = server.rstrip("/") + path
        headers = {"Content-Type": "application/json", "X-Lab-Outcome": outcome}
        token = self.option("token") or os.environ.get("TRIVY_TOKEN", "")
        if token:
            headers[self.option("token-header", default="Trivy-Token")] = token
        request = urllib.request.Request(
            url, data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        prefix = (
            f'{CHAIN}{chain}twirp error internal: failed to do request: Post "{url}": '
        )
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            self._deadline(prefix)
        try:
            with urllib.request.urlopen(request, timeout=remaining) as response:
                return bytes(response.read())
        except urllib.error.HTTPError as error:
            raise self._twirp_error(error, chain) from None
        except urllib.error.URLError as error:
            reason = error.reason
            if isinstance(reason, ConnectionRefusedError):
                raise Fatal(
                    f"{prefix}dial tcp {hostport(server)}: connect: connection refused"
                ) from None
            if isinstance(reason, socket.gaierror):
                host = urllib.parse.urlsplit(server).hostname
                raise Fatal(f"{prefix}dial tcp: lookup {host}: no such host") from None
            if isinstance(reason, TimeoutError | socket.timeout):
                self._deadline(prefix)
            raise Fatal(f"{prefix}{reason}") from None
        except (ConnectionResetError, http.client.RemoteDisconnected) as error:
            if isinstance(error, ConnectionResetError):
                raise Fatal(
                    f"{prefix}read tcp 127.0.0.1:51234->{hostport(server)}: read: "
                    "connection reset by peer"
                ) from None
            raise Fatal(f"{prefix}EOF") from None
        except TimeoutError:
            self._deadline(prefix)
        raise AssertionError("unreachable")

    def _twirp_error(self, error: urllib.error.HTTPError, chain: str) -> Fatal:
        text = error.read().decode(errors="replace")
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if isinstance(body, dict) and "code" in body:
            if body["code"] == "unavailable":
                for _ in range(2):
                    self.log(
                        "WARN",
                        f'HTTP error	err="twirp error unavailable: {body.get("msg", "")}"',
                    )
                    self.log("INFO", "Retrying HTTP request...")
            return Fatal(
                f"{CHAIN}{chain}twirp error {body['code']}: {body.get('msg', '')}"
            )
        status = f'{error.code} "{http.client.responses.get(error.code, "")}"'
        code = {
            502: "unavailable",
            503: "unavailable",
            504: "unavailable",
            404: "bad_route",
            401: "unauthenticated",
            403: "permission_denied",
        }.get(error.code, "internal")
        return Fatal(
            f"{CHAIN}{chain}twirp error {code}: Error from intermediary with HTTP "
            f"status code {status}"
        )

    def _deadline(self, prefix: str = "") -> None:
        self.log("WARN", f"Provide a higher timeout value, see {TIMEOUT_URL}")
        raise Fatal(f"{prefix or CHAIN}context deadline exceeded")

    def _write(self, image: str, outcome: str, report: bytes) -> int:
        if outcome == "crash":
            os.kill(os.getpid(), signal.SIGKILL)
        if outcome == "empty_output":
            report = b""
        elif outcome == "invalid_output":
            report = report[: len(report) // 2] or b"{not json"
        elif outcome == "list_output":
            report = b'[{"Target": "x", "Vulnerabilities": null}]\n'
        output = self.option("output", "o")
        if output:
            with open(output, "wb") as handle:
                handle.write(report)
        else:
            sys.stdout.buffer.write(report)
            sys.stdout.flush()
        code = self.option("exit-code", default="0")
        if code != "0" and b'"VulnerabilityID"' in report:
            return int(code)
        return 0

    def _control(self, what: str, image: str) -> dict[str, object]:
        control = os.environ.get("TRIVY_STUB_CONTROL")
        if not control:
            return {}
        query = urllib.parse.urlencode({"image": image})
        record = {
            "argv": sys.argv[1:],
            "env": sorted(os.environ),
            "token": os.environ.get("TRIVY_TOKEN"),
            "pid": os.getpid(),
            "age": process_age(),
        }
        request = urllib.request.Request(
            f"{control}/lab/{what}?{query}",
            data=json.dumps(record).encode(),
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer: dict[str, object] = json.loads(response.read())
            return answer


def process_age() -> float:
    """Seconds since this process started (interpreter start-up included)."""
    try:
        with open("/proc/self/stat") as stat, open("/proc/uptime") as uptime:
            fields = stat.read().rsplit(")", 1)[1].split()
            started = int(fields[19]) / os.sysconf("SC_CLK_TCK")
            return float(uptime.read().split()[0]) - started
    except (OSError, ValueError, IndexError):
        return 0.0


def parse_duration(text: str) -> float:
    total = 0.0
    for number, unit in re.findall(r"([0-9.]+)(h|ms|m|s)", text):
        total += float(number) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[unit]
    return total or 300.0


def hostport(server: str) -> str:
    parts = urllib.parse.urlsplit(server)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"


def registry_parts(image: str) -> tuple[str, str, str]:
    name, _, digest = image.partition("@")
    tag = digest
    if not digest:
        slash = name.rfind("/")
        colon = name.rfind(":")
        if colon > slash:
            name, tag = name[:colon], name[colon + 1 :]
        else:
            tag = "latest"
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        host, path = first, rest
    else:
        host, path = "index.docker.io", name
    if host == "docker.io":
        host = "index.docker.io"
    if host == "index.docker.io" and "/" not in path:
        path = f"library/{path}"
    return host, path, tag


def main() -> int:
    stub: Stub | None = None
    try:
        stub = Stub(sys.argv[1:])
        return stub.run()
    except Fatal as fatal:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        sys.stderr.write(f"{stamp}\tFATAL\tFatal error\t{fatal.message}\n")
        for line in fatal.block:
            sys.stderr.write(line + "\n")
        sys.stderr.write("\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
