"""Self-tests of the SSH node lab (real sshd processes on loopback)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from tests.lab._proc import pid_alive
from tests.lab.ssh_nodes import (
    SSHLab,
    SSHNode,
    fake_image_id,
    processes_in_namespace,
    run_in_node,
)

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(
        os.geteuid() != 0 or not Path("/usr/sbin/sshd").exists(),
        reason="needs root and /usr/sbin/sshd",
    ),
]

DAY = 86400


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHLab]:
    with SSHLab(tmp_path_factory.mktemp("sshlab")) as lab:
        a = lab.add_node("node-a")
        a.make_dir("alloc/a1", files={"app.log": 2048, "sub/x": b"x"}, mtime_days_ago=9)
        a.add_bind_mount("bound")
        a.add_nested_mount("holder", "inner")
        served = a.add_network_mount("net")
        (served / "remote.txt").write_text("over sshfs\n")
        b = lab.add_node("node-b")
        b.make_file("only-on-b", 10, days_ago=1)
        lab.add_node("node-wrong", host_cert="wrong-ca")
        lab.add_node("node-nocert", host_cert="none")
        lab.add_node("node-expired", host_cert="expired")
        lab.start_all()
        yield lab


def node(lab: SSHLab, name: str) -> SSHNode:
    return lab.nodes[name]


async def ssh_run(
    lab: SSHLab, target: SSHNode, command: str, *, alias: bool = True
) -> str:
    async with asyncssh.connect(**lab.asyncssh_options(target, alias=alias)) as conn:
        result = await conn.run(command, check=True)
    return str(result.stdout)


def mount_fstypes(mountinfo: str) -> dict[str, str]:
    """mount point -> fstype, from /proc/<pid>/mountinfo text."""
    table = {}
    for line in mountinfo.splitlines():
        before, after = line.split(" - ", 1)
        table[before.split()[4]] = after.split()[0]
    return table


def test_addresses_share_one_port(lab: SSHLab) -> None:
    addresses = [n.address for n in lab.nodes.values()]
    assert addresses[:2] == ["127.0.0.2", "127.0.0.3"]
    assert len(set(addresses)) == len(addresses)
    assert {n.port for n in lab.nodes.values()} == {lab.port}


def test_env_points_at_lab_material(lab: SSHLab) -> None:
    env = lab.env()
    assert env["SSH_USER"] == "root"
    assert env["SSH_PORT"] == str(lab.port)
    assert env["SSH_CONNECT_TIMEOUT"] == "5"
    for key in ("SSH_KEY_PATH", "SSH_CERT_PATH", "SSH_HOST_CA_PATH"):
        assert Path(env[key]).is_file()
    assert env["SSH_CERT_PATH"].endswith("id_ed25519-cert.pub")


@pytest.mark.parametrize("alias", [True, False], ids=["by-alias", "by-address"])
async def test_user_cert_login_with_trusted_host_ca(lab: SSHLab, alias: bool) -> None:
    assert await ssh_run(lab, node(lab, "node-a"), "whoami", alias=alias) == "root\n"


async def test_plain_asyncssh_connect_with_files(lab: SSHLab) -> None:
    target = node(lab, "node-b")
    async with asyncssh.connect(
        target.address,
        port=lab.port,
        username="root",
        client_keys=[str(lab.client_key)],
        known_hosts=([], [asyncssh.read_public_key(str(lab.host_ca_pub))], []),
        host_key_alias=target.name,
    ) as conn:
        result = await conn.run("echo ok", check=True)
    assert result.stdout == "ok\n"


async def test_each_node_shows_its_own_data_dir(lab: SSHLab) -> None:
    listing_a = await ssh_run(lab, node(lab, "node-a"), f"ls {lab.data_dir}")
    listing_b = await ssh_run(lab, node(lab, "node-b"), f"ls {lab.data_dir}")
    assert listing_a.split() == ["alloc", "bound", "holder", "net"]
    assert listing_b.split() == ["only-on-b"]
    assert list(lab.data_dir.iterdir()) == []  # the host sees an empty dir


async def test_writes_over_ssh_land_in_the_node_tree(lab: SSHLab) -> None:
    target = node(lab, "node-b")
    await ssh_run(lab, target, f"echo hi > {lab.data_dir}/written")
    assert (target.tree / "written").read_text() == "hi\n"
    (target.tree / "written").unlink()


async def test_wrong_ca_host_is_rejected(lab: SSHLab) -> None:
    with pytest.raises(asyncssh.HostKeyNotVerifiable, match="CA key is not trusted"):
        await ssh_run(lab, node(lab, "node-wrong"), "true")


async def test_expired_host_cert_is_rejected(lab: SSHLab) -> None:
    with pytest.raises(asyncssh.HostKeyNotVerifiable, match="expired"):
        await ssh_run(lab, node(lab, "node-expired"), "true")


async def test_host_without_cert_fails_during_connect(lab: SSHLab) -> None:
    with pytest.raises((OSError, asyncssh.Error)):
        await ssh_run(lab, node(lab, "node-nocert"), "true")


async def test_stopped_node_refuses_connections(lab: SSHLab) -> None:
    target = lab.add_node("node-stop")
    lab.start(target)
    assert await ssh_run(lab, target, "echo up") == "up\n"
    namespace = target.namespace
    assert namespace is not None
    lab.stop(target)
    assert not target.running
    assert processes_in_namespace(namespace) == []
    with pytest.raises(ConnectionRefusedError):
        await ssh_run(lab, target, "true")
    lab.start(target)  # a stopped node can come back
    assert await ssh_run(lab, target, "echo again") == "again\n"
    lab.stop(target)


async def test_network_mount_is_fuse_sshfs(lab: SSHLab) -> None:
    target = node(lab, "node-a")
    net = str(lab.data_dir / "net")
    seen = run_in_node(target, ["cat", "/proc/self/mountinfo"], check=True)
    assert mount_fstypes(seen.stdout)[net] == "fuse.sshfs"
    over_ssh = await ssh_run(lab, target, "cat /proc/self/mountinfo")
    assert mount_fstypes(over_ssh)[net] == "fuse.sshfs"
    assert await ssh_run(lab, target, f"cat {net}/remote.txt") == "over sshfs\n"


def test_bind_and_nested_mounts_are_mount_points(lab: SSHLab) -> None:
    seen = run_in_node(node(lab, "node-a"), ["cat", "/proc/self/mountinfo"]).stdout
    fstypes = mount_fstypes(seen)
    assert str(lab.data_dir) in fstypes
    assert str(lab.data_dir / "bound") in fstypes
    assert str(lab.data_dir / "holder" / "inner") in fstypes
    assert str(lab.data_dir / "holder") not in fstypes
    host = Path("/proc/self/mountinfo").read_text()
    assert str(lab.data_dir) not in mount_fstypes(host)  # nothing leaks out


def test_mounts_cannot_be_added_after_start(lab: SSHLab) -> None:
    with pytest.raises(RuntimeError, match="before start"):
        node(lab, "node-b").add_bind_mount("late")


def test_content_helpers_set_ages(tmp_path: Path) -> None:
    lab = SSHLab(tmp_path)
    target = lab.add_node("n1")
    top = target.make_dir(
        "alloc/old", files={"a.log": 100, "deep/b.bin": b"b"}, mtime_days_ago=30
    )
    ages = {p: _days_ago(p) for p in [top, *top.rglob("*")]}
    assert all(29.9 < age < 30.1 for age in ages.values()), ages
    assert (top / "a.log").stat().st_size == 100
    target.touch_newest("alloc/old/deep/b.bin", 0.5)
    assert 0.4 < _days_ago(top / "deep/b.bin") < 0.6
    assert 29.9 < _days_ago(top / "deep") < 30.1  # parents keep their age
    link = target.make_symlink("alloc/old/link", "/etc/passwd", days_ago=5)
    assert os.readlink(link) == "/etc/passwd"
    assert 4.9 < _days_ago(link) < 5.1
    assert 29.9 < _days_ago(top) < 30.1
    file = target.make_file("x/y/big", 3_000_000, days_ago=2)
    assert file.stat().st_size == 3_000_000
    assert 1.9 < _days_ago(file.parent) < 2.1  # created parents get the age
    with pytest.raises(ValueError, match="inside the tree"):
        target.path("../escape")


def _days_ago(path: Path) -> float:
    import time

    return (time.time() - path.lstat().st_mtime) / DAY


# -- docker stub -------------------------------------------------------------------


@pytest.fixture
def stub_node(tmp_path: Path) -> SSHNode:
    return SSHLab(tmp_path).add_node("stub")


def docker(target: SSHNode, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(target.bin_dir / "docker"), *args],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def test_docker_prune_output_matches_docker(stub_node: SSHNode) -> None:
    first, second, ref = fake_image_id("1"), fake_image_id("2"), fake_image_id("3")
    stub_node.set_dangling_images(
        [(f"sha256:{first}", 1_000_000), (second, 50_000, f"lab/app@sha256:{ref}")]
    )
    result = docker(stub_node, "image", "prune", "-f", "--filter", "until=24h")
    assert result.returncode == 0
    assert result.stdout == (
        "Deleted Images:\n"
        f"deleted: sha256:{first}\n"
        f"untagged: lab/app@sha256:{ref}\n"
        f"deleted: sha256:{second}\n"
        "\n"
        "Total reclaimed space: 1.05MB\n"
    )
    assert stub_node.dangling_images() == []
    again = docker(stub_node, "image", "prune", "--force")
    assert again.stdout == "Total reclaimed space: 0B\n"
    assert stub_node.docker_calls() == [
        "image prune -f --filter until=24h",
        "image prune --force",
    ]


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0B"),
        (999, "999B"),
        (1000, "1kB"),
        (512_000, "512kB"),
        (1_234_567, "1.235MB"),
        (12_300_000, "12.3MB"),
        (5_000_000_000, "5GB"),
    ],
)
def test_docker_prune_human_size(stub_node: SSHNode, size: int, text: str) -> None:
    stub_node.set_dangling_images([(fake_image_id("x"), size)])
    result = docker(stub_node, "image", "prune", "-f")
    assert result.stdout.endswith(f"Total reclaimed space: {text}\n")


def test_docker_version_and_unknown_commands(stub_node: SSHNode) -> None:
    assert docker(stub_node, "version", "--format", "{{.Server.Version}}").stdout == (
        "24.0.7\n"
    )
    unknown = docker(stub_node, "ps")
    assert unknown.returncode == 1
    assert "is not a docker command" in unknown.stderr
    stub_node.set_docker_daemon_running(False)
    down = docker(stub_node, "image", "prune", "-f")
    assert down.returncode == 1
    assert "Cannot connect to the Docker daemon" in down.stderr


async def test_docker_stub_is_on_the_node_path(lab: SSHLab) -> None:
    target = node(lab, "node-b")
    target.set_dangling_images([(fake_image_id("b"), 2048)])
    out = await ssh_run(lab, target, "command -v docker && docker image prune -f")
    assert out.splitlines()[0] == str(target.bin_dir / "docker")
    assert out.endswith("\nTotal reclaimed space: 2.048kB\n")


# -- cleanup -----------------------------------------------------------------------


def test_stop_all_leaves_no_process_or_mount(tmp_path: Path) -> None:
    with SSHLab(tmp_path) as lab:
        target = lab.add_node("gone")
        target.add_network_mount("net")
        lab.start(target)
        namespace = target.namespace
        assert namespace is not None
        pids = processes_in_namespace(namespace)
        names = {Path(f"/proc/{pid}/comm").read_text().strip() for pid in pids}
        assert {"sshd", "sshfs"} <= names
        helper = lab._helper
        assert helper is not None
        assert helper._proc is not None
        helper_pid = helper._proc.pid
    assert processes_in_namespace(namespace) == []
    assert not any(pid_alive(pid) for pid in [*pids, helper_pid])
    assert str(lab.data_dir / "net") not in Path("/proc/self/mountinfo").read_text()
    assert shutil.which("sshfs")  # the mount above really was sshfs
