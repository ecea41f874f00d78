"""Cleanup end to end: a real worker process, real sshd nodes, the Nomad simulator."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.cleanup.conftest import BROKEN, HEALTHY, SKIPPED, Lab
from tests.lab.fleet import STANDARD_VERDICTS

pytestmark = pytest.mark.lab


def verdicts(node: dict[str, Any]) -> dict[str, str]:
    entries = node["candidates"] + node["skipped"]
    return {entry["name"]: entry["reason"] for entry in entries}


def by_node(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {node["node"]: node for node in result["nodes"]}


class TestDryRun:
    def test_every_reason_is_reported_and_nothing_deleted(self, lab: Lab) -> None:
        """A dry run classifies each entry as expected and removes nothing."""
        before = {
            n: sorted(p.name for p in lab.fleet.clients[n].ssh.tree.iterdir())
            for n in HEALTHY
        }

        done = lab.run("--json", *[arg for n in HEALTHY for arg in ("--node", n)])

        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["dry_run"] is True
        nodes = by_node(result)
        for name in HEALTHY:
            assert verdicts(nodes[name]) == STANDARD_VERDICTS
            assert nodes[name]["status"] == "done"
            assert all(c["size_bytes"] >= 3000 for c in nodes[name]["candidates"])
            after = sorted(p.name for p in lab.fleet.clients[name].ssh.tree.iterdir())
            assert after == before[name]
        assert result["totals"]["candidates"] == 8
        assert result["totals"]["removed"] == 0

    def test_human_output_lists_candidates_and_reasons(self, lab: Lab) -> None:
        """Without --json the result is a table naming stale directories."""
        done = lab.run("--node", "node-1")

        assert done.returncode == 0, done.stderr
        assert "old-batch-job" in done.stdout
        assert "would remove" in done.stdout
        assert "network-filesystem" in done.stdout
        assert "new\\nline-job" in done.stdout


class TestFailures:
    def test_failing_nodes_are_reported_without_stopping_others(self, lab: Lab) -> None:
        """Unreachable or unverifiable nodes fail alone; exit code 3 says so."""
        done = lab.run("--json")

        assert done.returncode == 3, done.stderr
        result = json.loads(done.stdout)
        nodes = by_node(result)
        assert sorted(result["failed_nodes"]) == sorted(BROKEN)
        for name, message in BROKEN.items():
            assert nodes[name]["status"] == "failed"
            assert message in " ".join(nodes[name]["errors"])
        for name in HEALTHY:
            assert nodes[name]["status"] == "done"
        skipped = {s["name"]: s["reason"] for s in result["skipped_nodes"]}
        assert skipped == SKIPPED
        assert result["totals"]["nodes_failed"] == len(BROKEN)

    def test_unknown_node_is_reported_as_skipped(self, lab: Lab) -> None:
        """Asking for a node Nomad does not know is said plainly, and exits 3."""
        done = lab.run("--json", "--node", "no-such-node")

        assert done.returncode == 3, done.stderr
        result = json.loads(done.stdout)
        assert result["skipped_nodes"] == [
            {"name": "no-such-node", "reason": "no such node in Nomad"}
        ]

    def test_missing_data_dir_fails_the_node_clearly(self, lab: Lab) -> None:
        """A data_dir that does not exist on the node is an error, not 'nothing to do'."""
        done = lab.run(
            "--json", "--node", "node-1", config={"data_dir": "/nonexistent/nomad"}
        )

        assert done.returncode == 3
        node = by_node(json.loads(done.stdout))["node-1"]
        assert "cannot list /nonexistent/nomad" in node["errors"][0]


class TestLiveRun:
    @pytest.fixture
    def fresh(self, lab: Lab) -> str:
        """A node of its own, so deleting does not disturb other tests."""
        return "node-2"

    def test_removes_candidates_only_and_measures_bytes(
        self, lab: Lab, fresh: str
    ) -> None:
        """Only candidates disappear; mounts, symlinks and live work stay."""
        node = lab.fleet.clients[fresh].ssh
        outside = node.tree.parent / "outside-marker"
        outside.write_text("keep")
        candidates = {n for n, r in STANDARD_VERDICTS.items() if r == "candidate"}

        done = lab.run("--json", "--no-dry-run", "--node", fresh)

        assert done.returncode == 0, done.stderr
        result = by_node(json.loads(done.stdout))[fresh]
        assert {r["name"] for r in result["removed"]} == candidates
        assert all(r["bytes_reclaimed"] > 0 for r in result["removed"])
        assert result["bytes_reclaimed"] == sum(
            r["bytes_reclaimed"] for r in result["removed"]
        )
        left = {p.name for p in node.tree.iterdir()}
        assert left == set(STANDARD_VERDICTS) - candidates
        assert outside.read_text() == "keep"
        assert (node.tree.parent / "mounts").exists()

        again = lab.run("--json", "--no-dry-run", "--node", fresh)
        assert by_node(json.loads(again.stdout))[fresh]["candidates"] == []


class TestDockerPrune:
    def test_prunes_dangling_images_only(self, lab: Lab) -> None:
        """Docker prune removes dangling images and never passes --all."""
        node = lab.fleet.clients["node-1"].ssh

        done = lab.run("--json", "--docker-prune", "--node", "node-1")

        assert done.returncode == 0, done.stderr
        docker = by_node(json.loads(done.stdout))["node-1"]["docker"]
        assert len(docker["deleted"]) == 2
        assert docker["bytes_reclaimed"] == 1_750_000
        assert node.dangling_images() == []
        assert all(
            "-a" not in call and "--all" not in call for call in node.docker_calls()
        )
