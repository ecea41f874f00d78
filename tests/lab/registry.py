"""A real distribution registry on loopback, and a pusher that needs no Docker.

`RegistryLab` runs Debian's `docker-registry` (distribution 2.8) from a private
config with filesystem storage. `RegistryPusher` pushes blobs and manifests over
the v2 HTTP API with httpx. `populate_standard` builds the storage layout from
docs/notes (registry-and-ssh.md, section 1): two tags sharing a base layer, a
re-pointed tag, a Docker manifest list and an OCI index whose children are
pushed by digest only, and a manifest deleted through the API.

All content is derived from fixed seeds, so digests are the same on every run.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

logger = logging.getLogger(__name__)

REGISTRY_BINARY = "/usr/bin/docker-registry"

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

KIB = 1024
MIB = 1024 * KIB

_CONFIG_TEMPLATE = """\
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage_root}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
"""


def registry_available() -> bool:
    """Whether the distribution binary is installed on this machine."""
    return Path(REGISTRY_BINARY).is_file() and os.access(REGISTRY_BINARY, os.X_OK)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class RegistryLab:
    """One `docker-registry serve` process on a free loopback port."""

    def __init__(self, root: Path, *, port: int | None = None) -> None:
        self.root = root
        self.port = port if port is not None else free_port()
        self.storage_root = root / "storage"
        self.config_path = root / "config.yml"
        self.log_path = root / "registry.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: io.BufferedWriter | None = None

        self.storage_root.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            _CONFIG_TEMPLATE.format(storage_root=self.storage_root, port=self.port)
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, *, timeout: float = 10.0) -> None:
        if self.running:
            return

        self._log_file = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [REGISTRY_BINARY, "serve", str(self.config_path)],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready(timeout)
        logger.info("registry serving at %s (pid %d)", self.url, self._process.pid)

    def stop(self, *, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def gc_argv(
        self, dry_run: bool = False, delete_untagged: bool = False
    ) -> list[str]:
        argv = [REGISTRY_BINARY, "garbage-collect"]
        if dry_run:
            argv.append("--dry-run")
        if delete_untagged:
            argv.append("--delete-untagged")
        argv.append(str(self.config_path))
        return argv

    def run_gc(
        self, *, dry_run: bool = False, delete_untagged: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Run garbage-collect with the registry stopped, as the docs require."""
        if self.running:
            raise RuntimeError("stop the registry before garbage-collect")
        return subprocess.run(
            self.gc_argv(dry_run=dry_run, delete_untagged=delete_untagged),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def blob_data_path(self, digest: str) -> Path:
        algorithm, hex_digest = digest.split(":", 1)
        return (
            self.storage_root
            / "docker/registry/v2/blobs"
            / algorithm
            / hex_digest[:2]
            / hex_digest
            / "data"
        )

    def revision_link_path(self, repository: str, digest: str) -> Path:
        algorithm, hex_digest = digest.split(":", 1)
        return (
            self.storage_root
            / "docker/registry/v2/repositories"
            / repository
            / "_manifests/revisions"
            / algorithm
            / hex_digest
            / "link"
        )

    def stored_blob_digests(self) -> set[str]:
        """Digests of every blob whose `data` file exists in storage."""
        blobs = self.storage_root / "docker/registry/v2/blobs"
        return {
            f"{data.parent.parent.parent.name}:{data.parent.name}"
            for data in blobs.glob("*/*/*/data")
        }

    def copy_storage_to(self, target_root: Path) -> RegistryLab:
        """A second, stopped lab on a copy of this lab's storage."""
        if self.running:
            raise RuntimeError("stop the registry before copying its storage")
        other = RegistryLab(target_root)
        shutil.rmtree(other.storage_root)
        shutil.copytree(self.storage_root, other.storage_root, symlinks=True)
        return other

    def __enter__(self) -> RegistryLab:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise RuntimeError(f"docker-registry exited early; see {self.log_path}")
            try:
                if httpx.get(f"{self.url}/v2/", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"registry at {self.url} not ready after {timeout}s")


# --- deterministic content -------------------------------------------------


def layer_tar_gz(seed: str, size: int) -> tuple[bytes, str]:
    """A gzip tar holding one file of `size` incompressible bytes.

    Returns the compressed blob and the diff id (digest of the plain tar).
    """
    payload = hashlib.shake_256(seed.encode()).digest(size)
    info = tarfile.TarInfo(name=f"data/{seed}.bin")
    info.size = len(payload)
    info.mtime = 0
    info.mode = 0o644
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(payload))
    plain = buffer.getvalue()
    return gzip.compress(plain, compresslevel=6, mtime=0), sha256_digest(plain)


def canonical_json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Blob:
    data: bytes
    media_type: str

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "size": self.size, "digest": self.digest}


@dataclass(frozen=True)
class Image:
    """An image manifest together with the blobs it references."""

    manifest: Blob
    config: Blob
    layers: tuple[Blob, ...]
    platform: dict[str, str]

    @property
    def blobs(self) -> tuple[Blob, ...]:
        return (self.config, *self.layers)


def build_image(
    *, name: str, layers: list[tuple[str, int]], oci: bool = False, arch: str = "amd64"
) -> Image:
    """A single-platform image. `layers` are (seed, size) pairs."""
    layer_type, config_type, manifest_type = (
        (OCI_LAYER, OCI_CONFIG, OCI_MANIFEST)
        if oci
        else (DOCKER_LAYER, DOCKER_CONFIG, DOCKER_MANIFEST)
    )
    layer_blobs: list[Blob] = []
    diff_ids: list[str] = []
    for seed, size in layers:
        compressed, diff_id = layer_tar_gz(seed, size)
        layer_blobs.append(Blob(compressed, layer_type))
        diff_ids.append(diff_id)

    config = Blob(
        canonical_json(
            {
                "architecture": arch,
                "os": "linux",
                "config": {"Labels": {"lab.image": name}},
                "rootfs": {"type": "layers", "diff_ids": diff_ids},
            }
        ),
        config_type,
    )
    manifest = Blob(
        canonical_json(
            {
                "schemaVersion": 2,
                "mediaType": manifest_type,
                "config": config.descriptor(),
                "layers": [blob.descriptor() for blob in layer_blobs],
            }
        ),
        manifest_type,
    )
    platform = {"architecture": arch, "os": "linux"}
    return Image(manifest, config, tuple(layer_blobs), platform)


def build_index(children: list[Image], *, oci: bool = False) -> Blob:
    media_type = OCI_INDEX if oci else DOCKER_MANIFEST_LIST
    entries = [
        {**child.manifest.descriptor(), "platform": child.platform}
        for child in children
    ]
    document = {"schemaVersion": 2, "mediaType": media_type, "manifests": entries}
    return Blob(canonical_json(document), media_type)


# --- pushing over the v2 API -----------------------------------------------


class RegistryPusher:
    """Pushes blobs and manifests with plain HTTP calls (no Docker, no skopeo)."""

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        self._client = httpx.Client(base_url=base_url, timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RegistryPusher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def push_blob(self, repository: str, blob: Blob) -> None:
        started = self._client.post(f"/v2/{repository}/blobs/uploads/")
        _expect(started, 202)
        location = started.headers["Location"]
        separator = "&" if "?" in location else "?"
        finished = self._client.put(
            f"{location}{separator}digest={blob.digest}",
            content=blob.data,
            headers={"Content-Type": "application/octet-stream"},
        )
        _expect(finished, 201)

    def push_manifest(self, repository: str, reference: str, manifest: Blob) -> str:
        response = self._client.put(
            f"/v2/{repository}/manifests/{reference}",
            content=manifest.data,
            headers={"Content-Type": manifest.media_type},
        )
        _expect(response, 201)
        digest = response.headers["Docker-Content-Digest"]
        if digest != manifest.digest:
            raise AssertionError(f"registry digest {digest} != {manifest.digest}")
        return digest

    def push_image(self, repository: str, image: Image, reference: str) -> str:
        """Push blobs, then the manifest by `reference` (a tag or its digest)."""
        for blob in image.blobs:
            self.push_blob(repository, blob)
        return self.push_manifest(repository, reference, image.manifest)

    def delete_manifest(self, repository: str, digest: str) -> None:
        _expect(self._client.delete(f"/v2/{repository}/manifests/{digest}"), 202)


def _expect(response: httpx.Response, status: int) -> None:
    if response.status_code != status:
        raise AssertionError(
            f"{response.request.method} {response.request.url.path} -> "
            f"{response.status_code}, expected {status}: {response.text[:300]}"
        )


# --- the standard scenario -------------------------------------------------


@dataclass(frozen=True)
class PushedManifest:
    repository: str
    digest: str
    media_type: str
    tag: str | None
    blobs: dict[str, int]  # config and layer digests -> size
    size: int
    children: tuple[str, ...] = ()


@dataclass
class StandardScenario:
    """What `populate_standard` pushed, for assertions."""

    manifests: dict[str, PushedManifest] = field(default_factory=dict)

    def record(
        self, key: str, repository: str, blob: Blob, tag: str | None, **kw: Any
    ) -> None:
        self.manifests[key] = PushedManifest(
            repository=repository,
            digest=blob.digest,
            media_type=blob.media_type,
            tag=tag,
            size=blob.size,
            blobs=kw.pop("blobs", {}),
            **kw,
        )

    def digest(self, key: str) -> str:
        return self.manifests[key].digest

    def all_blob_digests(self) -> set[str]:
        """Every blob written to storage: manifests, configs and layers."""
        digests: set[str] = set()
        for manifest in self.manifests.values():
            digests.add(manifest.digest)
            digests.update(manifest.blobs)
        return digests

    def blob_sizes(self) -> dict[str, int]:
        sizes: dict[str, int] = {}
        for manifest in self.manifests.values():
            sizes[manifest.digest] = manifest.size
            sizes.update(manifest.blobs)
        return sizes

    def blobs_of(self, *keys: str) -> set[str]:
        """Manifest, config and layer digests of the given manifests."""
        digests: set[str] = set()
        for key in keys:
            digests.add(self.manifests[key].digest)
            digests.update(self.manifests[key].blobs)
        return digests


def _image_blobs(image: Image) -> dict[str, int]:
    return {blob.digest: blob.size for blob in image.blobs}


def populate_standard(lab: RegistryLab) -> StandardScenario:
    """Push the standard GC scenario into a running lab registry.

    Keys in the result: app:v1, app:v2, moving:old, moving:latest, multi:amd64,
    multi:arm64, multi:latest, multi-oci:amd64, multi-oci:arm64,
    multi-oci:latest, deleted:gone.
    """
    scenario = StandardScenario()
    with RegistryPusher(lab.url) as pusher:
        _push_app(pusher, scenario)
        _push_moving(pusher, scenario)
        _push_multi(pusher, scenario, repository="lab/multi", oci=False)
        _push_multi(pusher, scenario, repository="lab/multi-oci", oci=True)
        _push_deleted(pusher, scenario)
    return scenario


def _push_app(pusher: RegistryPusher, scenario: StandardScenario) -> None:
    for tag in ("v1", "v2"):
        image = build_image(
            name=f"app-{tag}", layers=[("app-base", MIB), (f"app-{tag}", 256 * KIB)]
        )
        pusher.push_image("lab/app", image, tag)
        scenario.record(
            f"app:{tag}", "lab/app", image.manifest, tag, blobs=_image_blobs(image)
        )


def _push_moving(pusher: RegistryPusher, scenario: StandardScenario) -> None:
    old = build_image(name="moving-old", layers=[("moving-old", 512 * KIB)])
    new = build_image(name="moving-new", layers=[("moving-new", 128 * KIB)])
    pusher.push_image("lab/moving", old, "latest")
    pusher.push_image("lab/moving", new, "latest")
    scenario.record(
        "moving:old", "lab/moving", old.manifest, None, blobs=_image_blobs(old)
    )
    scenario.record(
        "moving:latest", "lab/moving", new.manifest, "latest", blobs=_image_blobs(new)
    )


def _push_multi(
    pusher: RegistryPusher, scenario: StandardScenario, *, repository: str, oci: bool
) -> None:
    short = repository.removeprefix("lab/")
    children: list[Image] = []
    for arch in ("amd64", "arm64"):
        child = build_image(
            name=f"{short}-{arch}",
            layers=[(f"{short}-{arch}", 384 * KIB)],
            oci=oci,
            arch=arch,
        )
        pusher.push_image(repository, child, child.manifest.digest)
        scenario.record(
            f"{short}:{arch}",
            repository,
            child.manifest,
            None,
            blobs=_image_blobs(child),
        )
        children.append(child)

    index = build_index(children, oci=oci)
    pusher.push_manifest(repository, "latest", index)
    scenario.record(
        f"{short}:latest",
        repository,
        index,
        "latest",
        children=tuple(child.manifest.digest for child in children),
    )


def _push_deleted(pusher: RegistryPusher, scenario: StandardScenario) -> None:
    image = build_image(name="deleted", layers=[("deleted", 512 * KIB)])
    pusher.push_image("lab/deleted", image, "gone")
    pusher.delete_manifest("lab/deleted", image.manifest.digest)
    scenario.record(
        "deleted:gone", "lab/deleted", image.manifest, None, blobs=_image_blobs(image)
    )
