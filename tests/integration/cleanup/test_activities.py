"""Cleanup activities against the lab, one at a time, with real clients."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from infraops.cleanup.activities import CleanupActivities
from infraops.cleanup.models import CleanupConfig, Node, NodeWork, Reason, RemovalInput
from infraops.clients.nomad import NomadClient
from infraops.clients.ssh import SSHClient
from infraops.config import NomadSettings, SSHSettings
from tests.integration.cleanup.conftest import Lab

pytestmark = pytest.mark.lab


@pytest.fixture
async def activities(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[CleanupActivities]:
    for key, value in lab.env.items():
        monkeypatch.setenv(key, value)
    nomad, ssh = NomadClient(NomadSettings()), SSHClient(SSHSettings())
    yield CleanupActivities(nomad, ssh)
    await nomad.aclose()
    await ssh.aclose()


async def test_removal_rechecks_nomad_just_before_deleting(
    lab: Lab, activities: CleanupActivities
) -> None:
    """A candidate that Nomad starts using after the scan is kept, not deleted."""
    client = lab.fleet.add_client("node-recheck")
    lab.fleet.ssh.start(client.ssh)
    lab.fleet.nomad.add_alloc("web", "web", client.node_id)  # keep "web" busy
    lab.fleet.ensure_job("old-batch-job")
    config = CleanupConfig(data_dir=lab.fleet.data_dir)
    node = Node(id=client.node_id, name=client.name, address=client.ssh.address)
    # Between scan and removal, old-batch-job starts running on the node.
    lab.fleet.nomad.add_alloc("old-batch-job", "old-batch-job", client.node_id)
    names = [
        "old-batch-job",
        "finished-job",
        "web",
        "mounted-job",
        "../outside",
        "gone",
    ]

    removal = await ActivityEnvironment().run(
        activities.remove_candidates,
        RemovalInput(node=node, config=config, names=names),
    )

    assert [r.name for r in removal.removed] == ["finished-job"]
    kept = {v.name: v.reason for v in removal.kept}
    assert kept == {
        "old-batch-job": Reason.IN_USE,
        "web": Reason.IN_USE,
        "mounted-job": Reason.MOUNT,
        "../outside": Reason.VANISHED,
        "gone": Reason.VANISHED,
    }
    assert (client.ssh.tree / "old-batch-job").is_dir()
    assert not (client.ssh.tree / "finished-job").exists()


async def test_host_without_certificate_is_not_enrolled_not_transient(
    lab: Lab, activities: CleanupActivities
) -> None:
    """A node with no host certificate fails at once, non-retryable."""
    client = lab.fleet.clients["node-no-cert"]
    node = Node(id=client.node_id, name=client.name, address=client.ssh.address)
    config = CleanupConfig(data_dir=lab.fleet.data_dir)

    with pytest.raises(ApplicationError) as caught:
        await ActivityEnvironment().run(
            activities.scan_node, NodeWork(node=node, config=config)
        )

    assert caught.value.type == "HostNotEnrolled"
    assert caught.value.non_retryable


async def test_nomad_without_leader_is_retryable(
    lab: Lab, activities: CleanupActivities
) -> None:
    """'No cluster leader' reaches Temporal as a retryable failure."""
    lab.fleet.nomad.set_leader(False)
    try:
        with pytest.raises(ApplicationError) as caught:
            await ActivityEnvironment().run(
                activities.list_nodes, CleanupConfig(data_dir=lab.fleet.data_dir)
            )
    finally:
        lab.fleet.nomad.set_leader(True)

    assert "No cluster leader" in caught.value.message
    assert not caught.value.non_retryable
