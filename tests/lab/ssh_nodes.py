"""Simulated Nomad client nodes: real OpenSSH servers on loopback addresses.

Every node is an ``sshd`` listening on its own address (127.0.0.2, 127.0.0.3,
...) and the lab's single port. Each sshd runs in its own mount and PID
namespace, where the node's private tree ``root/nodes/<name>/data`` is
bind-mounted on the lab's common ``data_dir``: all nodes show the same path
with different contents. Logins need a user certificate signed by the lab's
user CA; nodes present host certificates signed by the lab's host CA.

Layout under ``root``::

    ssh-user-ca[.pub] ssh-host-ca[.pub] wrong-host-ca[.pub]
    id_ed25519[.pub] id_ed25519-cert.pub known_hosts
    data/                       the common data_dir (empty on the host)
    nodes/<name>/data/          what <name> shows at data_dir
    nodes/<name>/bin/docker     the node's docker stub (first on PATH)
    nodes/<name>/docker/        the stub's state (dangling images, calls)
    nodes/<name>/mounts/<n>/    sources of extra bind mounts
    nodes/<name>/{host_key*,sshd_config,sshd.log,start.sh,start.log}
    sshfs/                      helper sshd that serves network mounts
    netshare/<name>-<n>/        directories served to nodes over sshfs

Usage::

    with SSHLab(tmp_path) as lab:
        node = lab.add_node("node-1")
        node.make_dir("alloc/old", files={"a.log": 1024}, mtime_days_ago=30)
        lab.start(node)
        async with asyncssh.connect(**lab.asyncssh_options(node)) as conn:
            ...

The processes die with the namespace: stopping a node's sshd (PID 1 of its
PID namespace) makes the kernel kill every session, sshfs and ssh process of
that node, which releases its mount namespace and with it every mount.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import re
import shlex
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any, Literal, Self

import asyncssh

from tests.lab._proc import (
    LabProcessError,
    free_port,
    log_tail,
    only_child,
    run,
    spawn_in_namespaces,
    stop_namespaced,
    wait_for_tcp,
)

HostCertMode = Literal["valid", "wrong-ca", "none", "expired"]
DanglingImage = tuple[str, int] | tuple[str, int, str | None]

SSHD = "/usr/sbin/sshd"
PRIVSEP_DIR = Path("/run/sshd")
HELPER_ADDRESS = "127.0.0.1"
FIRST_NODE_OCTET = 2
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
DAY = 86400.0
DOCKER_STUB = Path(__file__).with_name("docker_stub.sh")
DEFAULT_DOCKER_VERSION = "24.0.7"
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
_HEX64_RE = re.compile(r"^[0-9a-f]{64}$")


def fake_image_id(seed: str) -> str:
    """A stable 64-hex image id derived from ``seed``."""
    return hashlib.sha256(seed.encode()).hexdigest()


def _keygen(path: Path, comment: str) -> None:
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path])


def _sign(
    ca: Path,
    key_pub: Path,
    principals: Sequence[str],
    validity: str,
    *,
    host: bool,
) -> Path:
    """Sign ``key_pub`` with ``ca``; returns the ``*-cert.pub`` path."""
    kind = ["-h"] if host else []
    names = ",".join(principals)
    ident = f"infraops-lab-{principals[0]}"
    argv: list[str | os.PathLike[str]] = [
        "ssh-keygen",
        "-q",
        "-s",
        ca,
        "-I",
        ident,
        *kind,
        "-n",
        names,
        "-V",
        validity,
    ]
    run([*argv, key_pub])
    return key_pub.with_name(key_pub.name.removesuffix(".pub") + "-cert.pub")


def _age(path: Path, days_ago: float) -> None:
    stamp = time.time() - days_ago * DAY
    os.utime(path, (stamp, stamp), follow_symlinks=False)


def _age_tree(top: Path, days_ago: float) -> None:
    """Set the mtime of ``top`` and everything below it, links not followed."""
    for dirpath, dirnames, filenames in os.walk(top, topdown=False):
        for name in [*filenames, *dirnames]:
            _age(Path(dirpath) / name, days_ago)
    _age(top, days_ago)


def _write_content(path: Path, content: bytes | int) -> None:
    """Write bytes, or ``content`` bytes of filler when given an int."""
    with path.open("wb") as out:
        if isinstance(content, bytes):
            out.write(content)
            return
        chunk = b"infraops-lab\n" * 80_000
        left = content
        while left > 0:
            out.write(chunk[:left])
            left -= len(chunk)


def mount_namespace(pid: int) -> str | None:
    """The ``mnt:[inode]`` id of ``pid``'s mount namespace, if readable."""
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def processes_in_namespace(namespace: str) -> list[int]:
    """Pids of live processes whose mount namespace is ``namespace``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and mount_namespace(int(entry.name)) == namespace:
            pids.append(int(entry.name))
    return pids


@dataclass(frozen=True)
class _Mount:
    """An extra mount performed inside a node's namespace after the data bind."""

    kind: Literal["bind", "sshfs"]
    source: Path
    target_rel: PurePosixPath


class SSHNode:
    """One simulated client node. Create it with ``SSHLab.add_node``."""

    def __init__(
        self,
        lab: SSHLab,
        name: str,
        address: str,
        host_cert: HostCertMode,
    ) -> None:
        self.lab = lab
        self.name = name
        self.address = address
        self.host_cert_mode: HostCertMode = host_cert
        self.dir = lab.root / "nodes" / name
        self.tree = self.dir / "data"
        self.bin_dir = self.dir / "bin"
        self.home = self.dir / "home"
        self.docker_state_dir = self.dir / "docker"
        self.host_key = self.dir / "host_key"
        self.host_cert: Path | None = None
        self.config = self.dir / "sshd_config"
        self.log = self.dir / "sshd.log"
        self.start_log = self.dir / "start.log"
        self.pid_file = self.dir / "sshd.pid"
        self.start_script = self.dir / "start.sh"
        self.mounts: list[_Mount] = []
        self.sshd_pid: int | None = None
        self.namespace: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"SSHNode({self.name!r}, {self.address}:{self.lab.port}, {state})"

    @property
    def port(self) -> int:
        return self.lab.port

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- paths ---------------------------------------------------------------

    def path(self, rel: str | os.PathLike[str]) -> Path:
        """Host path of ``rel`` inside this node's data tree (no escaping)."""
        pure = PurePosixPath(rel)
        if pure.is_absolute() or ".." in pure.parts or not pure.parts:
            raise ValueError(f"{rel!r} must be a relative path inside the tree")
        return self.tree / pure

    @contextlib.contextmanager
    def _keeping_parent_ages(self, path: Path, days_ago: float) -> Iterator[None]:
        """Creating ``path`` must not touch existing parents' mtimes.

        Parents that do not exist yet are created and aged ``days_ago``.
        """
        parents = [p for p in path.parents if p.is_relative_to(self.tree)]
        saved = {p: os.stat(p) for p in parents if p.exists()}
        path.parent.mkdir(parents=True, exist_ok=True)
        yield
        for parent in parents:  # deepest first
            if parent in saved:
                st = saved[parent]
                os.utime(parent, ns=(st.st_atime_ns, st.st_mtime_ns))
            else:
                _age(parent, days_ago)

    # -- content helpers (use before or after start) --------------------------

    def make_dir(
        self,
        rel: str,
        *,
        files: dict[str, bytes | int] | None = None,
        mtime_days_ago: float = 0.0,
    ) -> Path:
        """Create directory ``rel`` holding ``files`` (name -> bytes or size).

        The directory and everything in it get an mtime ``mtime_days_ago``
        days in the past. File names may contain ``/`` for subdirectories.
        """
        target = self.path(rel)
        with self._keeping_parent_ages(target, mtime_days_ago):
            target.mkdir(exist_ok=True)
            for name, content in (files or {}).items():
                file = self.path(f"{rel}/{name}")
                file.parent.mkdir(parents=True, exist_ok=True)
                _write_content(file, content)
            _age_tree(target, mtime_days_ago)
        return target

    def make_file(self, rel: str, size: int | bytes = 0, days_ago: float = 0.0) -> Path:
        """Create file ``rel`` of ``size`` bytes (or with those bytes)."""
        target = self.path(rel)
        with self._keeping_parent_ages(target, days_ago):
            _write_content(target, size)
            _age(target, days_ago)
        return target

    def touch_newest(self, rel_path: str, days_ago: float = 0.0) -> Path:
        """Give one (possibly deep) file an mtime ``days_ago``; create if missing.

        Parent directories keep their mtimes, so an old directory can hold
        one recently written file.
        """
        target = self.path(rel_path)
        with self._keeping_parent_ages(target, days_ago):
            target.touch()
            _age(target, days_ago)
        return target

    def make_symlink(self, rel: str, target: str, days_ago: float = 0.0) -> Path:
        """Create symlink ``rel`` pointing at ``target`` (stored verbatim)."""
        link = self.path(rel)
        with self._keeping_parent_ages(link, days_ago):
            link.symlink_to(target)
            _age(link, days_ago)
        return link

    # -- extra mounts (declare before start) ----------------------------------

    def _declare_mount(
        self, kind: Literal["bind", "sshfs"], rel: str, src: Path
    ) -> Path:
        if self._proc is not None:
            raise LabProcessError(f"declare mounts of {self.name} before start()")
        mount_point = self.path(rel)
        with self._keeping_parent_ages(mount_point, 0.0):
            mount_point.mkdir(exist_ok=True)
        src.mkdir(parents=True)
        self.mounts.append(_Mount(kind, src, PurePosixPath(rel)))
        return src

    def add_bind_mount(self, rel: str) -> Path:
        """Make ``data_dir/rel`` a mount point (a separate bind-mounted dir).

        Returns the host directory mounted there; fill it as you like.
        """
        src = self.dir / "mounts" / f"{len(self.mounts)}-bind"
        return self._declare_mount("bind", rel, src)

    def add_nested_mount(self, rel_parent: str, rel_child: str) -> Path:
        """Make ``data_dir/rel_parent`` an entry that contains a mount point.

        ``rel_child`` is relative to ``rel_parent``. Returns the mounted source.
        """
        return self.add_bind_mount(str(PurePosixPath(rel_parent) / rel_child))

    def add_network_mount(self, rel: str) -> Path:
        """Mount a directory over sshfs (fstype ``fuse.sshfs``) at ``rel``.

        Returns the served host directory (under ``root/netshare``).
        """
        src = self.lab.root / "netshare" / f"{self.name}-{len(self.mounts)}"
        return self._declare_mount("sshfs", rel, src)

    # -- docker stub ------------------------------------------------------------

    def _install_docker_stub(self) -> None:
        self.bin_dir.mkdir(parents=True, exist_ok=True)
        self.docker_state_dir.mkdir(parents=True, exist_ok=True)
        quoted = shlex.quote(str(self.docker_state_dir))
        script = DOCKER_STUB.read_text().replace("@STATE_DIR@", quoted)
        stub = self.bin_dir / "docker"
        stub.write_text(script)
        stub.chmod(0o755)
        (self.docker_state_dir / "dangling").touch()
        self.set_docker_version(DEFAULT_DOCKER_VERSION)

    def set_dangling_images(self, images: Iterable[DanglingImage]) -> None:
        """Replace the node's dangling images: ``(id, size[, untagged_ref])``.

        ``id`` is 64 hex digits, with or without a ``sha256:`` prefix.
        """
        lines = []
        for image in images:
            image_id = image[0].removeprefix("sha256:")
            if not _HEX64_RE.match(image_id):
                raise ValueError(f"not a sha256 image id: {image[0]!r}")
            untagged = image[2] if len(image) > 2 else None
            lines.append(" ".join([image_id, str(image[1]), *filter(None, [untagged])]))
        text = "".join(f"{line}\n" for line in lines)
        (self.docker_state_dir / "dangling").write_text(text)

    def dangling_images(self) -> list[str]:
        """Ids of the dangling images the stub still holds."""
        text = (self.docker_state_dir / "dangling").read_text()
        return [line.split()[0] for line in text.splitlines() if line.strip()]

    def docker_calls(self) -> list[str]:
        """Every docker invocation's arguments, one string per call."""
        calls = self.docker_state_dir / "calls.log"
        return calls.read_text().splitlines() if calls.exists() else []

    def set_docker_version(self, version: str) -> None:
        (self.docker_state_dir / "version").write_text(f"{version}\n")

    def set_docker_daemon_running(self, running: bool) -> None:
        """When not running, every docker command fails like a stopped dockerd."""
        marker = self.docker_state_dir / "daemon-down"
        if running:
            marker.unlink(missing_ok=True)
        else:
            marker.touch()


class SSHLab:
    """Certificates, nodes and their sshd processes, all under ``root``."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        # Free on every address, so any 127.0.0.x can listen on it.
        self.port = port if port is not None else free_port("0.0.0.0")
        self.nodes: dict[str, SSHNode] = {}
        self.data_dir = self.root / "data"
        self.data_dir.mkdir(exist_ok=True)
        self.user_ca = self.root / "ssh-user-ca"
        self.user_ca_pub = self.root / "ssh-user-ca.pub"
        self.host_ca = self.root / "ssh-host-ca"
        self.host_ca_pub = self.root / "ssh-host-ca.pub"
        self.wrong_host_ca = self.root / "wrong-host-ca"
        self.wrong_host_ca_pub = self.root / "wrong-host-ca.pub"
        self.client_key = self.root / "id_ed25519"
        self.client_cert = self.root / "id_ed25519-cert.pub"
        self.known_hosts = self.root / "known_hosts"
        self._helper: _SftpHelper | None = None
        self._make_keys()

    def _make_keys(self) -> None:
        for ca in (self.user_ca, self.host_ca, self.wrong_host_ca):
            _keygen(ca, ca.name)
        _keygen(self.client_key, "infraops-lab-client")
        client_pub = self.client_key.with_suffix(".pub")
        _sign(self.user_ca, client_pub, ["root"], "-5m:+2h", host=False)
        ca_line = self.host_ca_pub.read_text().strip()
        self.known_hosts.write_text(f"@cert-authority * {ca_line}\n")

    # -- configuration for clients ------------------------------------------------

    def env(self) -> dict[str, str]:
        """Settings for infraops' SSH client (SSHSettings) pointing at the lab."""
        return {
            "SSH_USER": "root",
            "SSH_PORT": str(self.port),
            "SSH_KEY_PATH": str(self.client_key),
            "SSH_CERT_PATH": str(self.client_cert),
            "SSH_HOST_CA_PATH": str(self.host_ca_pub),
            "SSH_CONNECT_TIMEOUT": "5",
        }

    def asyncssh_options(self, node: SSHNode, *, alias: bool = True) -> dict[str, Any]:
        """Keyword arguments for ``asyncssh.connect`` to ``node``.

        Connects by address; with ``alias`` the host certificate is checked
        against the node name, otherwise against the address.
        """
        options: dict[str, Any] = {
            "host": node.address,
            "port": self.port,
            "username": "root",
            "client_keys": [
                (
                    asyncssh.read_private_key(str(self.client_key)),
                    asyncssh.read_certificate(str(self.client_cert)),
                )
            ],
            "known_hosts": ([], [asyncssh.read_public_key(str(self.host_ca_pub))], []),
            "connect_timeout": 5,
        }
        if alias:
            options["host_key_alias"] = node.name
        return options

    # -- nodes ---------------------------------------------------------------------

    def _next_address(self) -> str:
        taken = {node.address for node in self.nodes.values()}
        for octet in range(FIRST_NODE_OCTET, 255):
            address = f"127.0.0.{octet}"
            if address not in taken:
                return address
        raise LabProcessError("no loopback address left in 127.0.0.0/24")

    def add_node(
        self,
        name: str,
        address: str | None = None,
        *,
        host_cert: HostCertMode = "valid",
    ) -> SSHNode:
        """Create a node (keys, certificate, tree, docker stub); not started."""
        if not _NAME_RE.match(name) or name in self.nodes:
            raise ValueError(f"invalid or duplicate node name {name!r}")
        address = address or self._next_address()
        taken = {node.address for node in self.nodes.values()}
        if address in taken or address == HELPER_ADDRESS:
            raise ValueError(f"address {address} is already used in this lab")
        if not address.startswith("127."):
            raise ValueError(f"{address} is not a loopback address")
        node = SSHNode(self, name, address, host_cert)
        node.tree.mkdir(parents=True)
        self._make_host_key(node)
        node._install_docker_stub()
        self.nodes[name] = node
        return node

    def _make_host_key(self, node: SSHNode) -> None:
        _keygen(node.host_key, f"host-{node.name}")
        if node.host_cert_mode == "none":
            return
        ca = self.wrong_host_ca if node.host_cert_mode == "wrong-ca" else self.host_ca
        validity = "-3h:-1h" if node.host_cert_mode == "expired" else "-5m:+2h"
        node.host_cert = _sign(
            ca,
            node.host_key.with_suffix(".pub"),
            [node.name, node.address],
            validity,
            host=True,
        )

    def _sshd_config(self, node: SSHNode) -> str:
        path = f"{node.bin_dir}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
        lines = [
            f"ListenAddress {node.address}",
            f"Port {self.port}",
            f"HostKey {node.host_key}",
            *([f"HostCertificate {node.host_cert}"] if node.host_cert else []),
            f"TrustedUserCAKeys {self.user_ca_pub}",
            "AuthorizedKeysFile none",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "PermitRootLogin prohibit-password",
            "StrictModes no",
            # sshd is PID 1 of its PID namespace, so this file holds "1".
            f"PidFile {node.pid_file}",
            "MaxSessions 20",
            "MaxStartups 100:30:200",
            "LogLevel VERBOSE",
            "UseDNS no",
            "PrintMotd no",
            "PrintLastLog no",
            "X11Forwarding no",
            "Subsystem sftp internal-sftp",
            f"SetEnv PATH={path}",
        ]
        return "\n".join(lines) + "\n"

    def _start_script(self, node: SSHNode) -> str:
        q = shlex.quote
        lines = [
            "#!/bin/sh",
            "set -eu",
            f"mount --bind {q(str(node.tree))} {q(str(self.data_dir))}",
        ]
        for mount in node.mounts:
            target = str(self.data_dir / mount.target_rel)
            if mount.kind == "bind":
                lines.append(f"mount --bind {q(str(mount.source))} {q(target)}")
            else:
                argv = self._sftp_helper().sshfs_argv(mount.source, target)
                lines.append(shlex.join(argv))
        # A node has its own root home: a plain one, without this machine's
        # .bashrc (which runs pyenv on every SSH command and skews timings).
        lines.append(f"mount --bind {q(str(node.home))} {q(str(Path.home()))}")
        lines.append(f"exec {SSHD} -D -f {q(str(node.config))} -E {q(str(node.log))}")
        return "\n".join(lines) + "\n"

    def _sftp_helper(self) -> _SftpHelper:
        if self._helper is None:
            self._helper = _SftpHelper(self.root / "sshfs", self.port)
            self._helper.start()
            atexit.register(self.stop_all)
        return self._helper

    def start(self, node: SSHNode) -> None:
        """Start ``node``'s sshd; returns once it accepts TCP connections."""
        if node.running:
            return
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
        node.config.write_text(self._sshd_config(node))
        node.home.mkdir(mode=0o700, exist_ok=True)
        node.start_script.write_text(self._start_script(node))
        atexit.register(self.stop_all)
        node._proc = spawn_in_namespaces(
            ["/bin/sh", str(node.start_script)], log=node.start_log, mount=True
        )
        try:
            self._await_sshd(node)
        except BaseException:
            self.stop(node)
            raise

    def _await_sshd(self, node: SSHNode) -> None:
        assert node._proc is not None
        try:
            wait_for_tcp(
                node._proc,
                node.address,
                self.port,
                what=f"sshd of node {node.name}",
                log=node.log,
                timeout=START_TIMEOUT,
            )
        except LabProcessError as exc:
            raise LabProcessError(
                f"{exc}\nstart log ({node.start_log}):\n{log_tail(node.start_log)}"
            ) from None
        node.sshd_pid = only_child(node._proc.pid)
        if node.sshd_pid is None:
            raise LabProcessError(f"sshd of {node.name} runs but cannot be found")
        node.namespace = mount_namespace(node.sshd_pid)
        if node.namespace in (None, mount_namespace(os.getpid())):
            raise LabProcessError(f"sshd of {node.name} is not in its own namespace")

    def start_all(self) -> None:
        """Start every node that is not running."""
        for node in self.nodes.values():
            self.start(node)

    def stop(self, node: SSHNode) -> None:
        """Stop ``node``: its sshd, sessions and mounts all go; idempotent."""
        proc, node._proc = node._proc, None
        if proc is None:
            return
        stop_namespaced(proc, STOP_TIMEOUT)
        self._await_namespace_gone(node)
        node.sshd_pid = None

    def _await_namespace_gone(self, node: SSHNode) -> None:
        """Wait until no process holds the node's mount namespace."""
        if node.namespace is None:
            return
        deadline = time.monotonic() + STOP_TIMEOUT
        while pids := processes_in_namespace(node.namespace):
            if time.monotonic() > deadline:
                for pid in pids:  # e.g. a hung run_in_node command
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                deadline = time.monotonic() + STOP_TIMEOUT
            time.sleep(0.02)

    def stop_all(self) -> None:
        """Stop every node and the sshfs helper; safe to call repeatedly."""
        for node in self.nodes.values():
            self.stop(node)
        if self._helper is not None:
            self._helper.stop()
            self._helper = None
        atexit.unregister(self.stop_all)

    def run_in_node(
        self,
        node: SSHNode,
        argv: Sequence[str],
        *,
        check: bool = False,
        timeout: float = 30.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` in ``node``'s mount namespace (what the node sees)."""
        return run_in_node(node, argv, check=check, timeout=timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()


def run_in_node(
    node: SSHNode,
    argv: Sequence[str],
    *,
    check: bool = False,
    timeout: float = 30.0,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` inside a running node's mount namespace via nsenter."""
    if not node.running or node.sshd_pid is None:
        raise LabProcessError(f"node {node.name} is not running")
    nsenter = ["nsenter", "--target", str(node.sshd_pid), "--mount", "--"]
    return run([*nsenter, *argv], check=check, timeout=timeout)


class _SftpHelper:
    """A plain-key sshd on 127.0.0.1 that serves sshfs network mounts.

    Its host key is pinned in a generated known_hosts, so sshfs runs with
    ``StrictHostKeyChecking=yes``.
    """

    def __init__(self, directory: Path, port: int) -> None:
        self.dir = directory
        self.port = port
        self.host_key = directory / "host_key"
        self.client_key = directory / "client_key"
        self.authorized_keys = directory / "authorized_keys"
        self.known_hosts = directory / "known_hosts"
        self.config = directory / "sshd_config"
        self.log = directory / "sshd.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def _prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        for key in (self.host_key, self.client_key):
            if not key.exists():
                _keygen(key, key.name)
        self.authorized_keys.write_text(self.client_key.with_suffix(".pub").read_text())
        host_pub = self.host_key.with_suffix(".pub").read_text().split()[:2]
        self.known_hosts.write_text(
            f"[{HELPER_ADDRESS}]:{self.port} {' '.join(host_pub)}\n"
        )
        self.config.write_text(
            "\n".join(
                [
                    f"ListenAddress {HELPER_ADDRESS}",
                    f"Port {self.port}",
                    f"HostKey {self.host_key}",
                    f"AuthorizedKeysFile {self.authorized_keys}",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "PermitRootLogin prohibit-password",
                    "StrictModes no",
                    f"PidFile {self.dir / 'sshd.pid'}",
                    "Subsystem sftp internal-sftp",
                    "ForceCommand internal-sftp",
                    "MaxStartups 100:30:200",
                ]
            )
            + "\n"
        )

    def start(self) -> None:
        self._prepare()
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
        argv = [SSHD, "-D", "-f", str(self.config), "-E", str(self.log)]
        self._proc = spawn_in_namespaces(argv, log=self.log, mount=False)
        wait_for_tcp(
            self._proc,
            HELPER_ADDRESS,
            self.port,
            what="sshfs helper sshd",
            log=self.log,
            timeout=START_TIMEOUT,
        )

    def sshfs_argv(self, source: Path, target: str) -> list[str]:
        options = ",".join(
            [
                f"IdentityFile={self.client_key}",
                "IdentitiesOnly=yes",
                f"UserKnownHostsFile={self.known_hosts}",
                "GlobalKnownHostsFile=/dev/null",
                "StrictHostKeyChecking=yes",
                "BatchMode=yes",
                "ConnectTimeout=5",
            ]
        )
        return [
            "sshfs", "-F", "/dev/null", "-p", str(self.port), "-o", options,
            f"root@{HELPER_ADDRESS}:{source}", target,
        ]  # fmt: skip

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        stop_namespaced(proc, STOP_TIMEOUT)


__all__ = [
    "DanglingImage",
    "HostCertMode",
    "SSHLab",
    "SSHNode",
    "fake_image_id",
    "mount_namespace",
    "processes_in_namespace",
    "run_in_node",
]
