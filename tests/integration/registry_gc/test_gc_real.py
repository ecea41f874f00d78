"""RegistryGC end to end on real registry storage, through the real SSH path."""

from __future__ import annotations

import httpx
import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.testing import ActivityEnvironment

from infraops.cli._registry_gc_view import RegistryGCView
from infraops.registry_gc.guard import registry_gc_holds
from infraops.registry_gc.models import REGISTRY_GC_WORKFLOW_ID, StepName
from tests.integration.registry_gc.conftest import GCLab
from tests.lab.registry import sha256_digest

pytestmark = pytest.mark.lab


ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)


def pull_everything(url: str) -> list[str]:
    """Pull every tag like a client would: manifests, children, every blob
    downloaded and digest-checked. Returns what failed."""
    failures: list[str] = []
    with httpx.Client(base_url=url, headers={"Accept": ACCEPT}, timeout=10) as http:
        for repo in http.get("/v2/_catalog").json()["repositories"]:
            for tag in http.get(f"/v2/{repo}/tags/list").json().get("tags") or []:
                failures += _pull(http, repo, tag, tag)
    return failures


def _pull(http: httpx.Client, repo: str, tag: str, reference: str) -> list[str]:
    response = http.get(f"/v2/{repo}/manifests/{reference}")
    if response.status_code != 200:
        return [f"{repo}:{tag} manifest {reference}: {response.status_code}"]
    document = response.json()
    if "manifests" in document:
        failures: list[str] = []
        for child in document["manifests"]:
            failures += _pull(http, repo, tag, child["digest"])
        return failures
    failures = []
    for blob in [document["config"], *document["layers"]]:
        got = http.get(f"/v2/{repo}/blobs/{blob['digest']}", follow_redirects=True)
        if got.status_code != 200 or sha256_digest(got.content) != blob["digest"]:
            failures.append(f"{repo}:{tag} blob {blob['digest']}: {got.status_code}")
    return failures


async def test_live_gc_deletes_only_orphans_and_everything_still_pulls(
    gc_lab: GCLab,
) -> None:
    scenario = gc_lab.host.scenario
    assert scenario is not None
    before_blobs = gc_lab.host.registry.stored_blob_digests()
    first_alloc = gc_lab.job.running_allocs()

    handle = await gc_lab.start(gc_lab.config(dry_run=False, delete_untagged=False))
    result = await handle.result()

    orphaned = scenario.blobs_of("deleted:gone")
    sizes = scenario.blob_sizes()
    assert result.dry_run is False
    assert result.gc_version == "2.8.2+ds1"
    assert result.flags == []
    assert result.refusals == []
    assert (result.blobs_marked, result.blobs_deleted, result.manifests_deleted) == (
        27,
        3,
        0,
    )
    assert result.blob_bytes_deleted == sum(sizes[d] for d in orphaned)
    # du counts the removed blob directories too: more than the blob bytes.
    assert result.disk_bytes_reclaimed > result.blob_bytes_deleted
    assert result.disk_bytes_reclaimed == (
        result.disk_bytes_before - result.disk_bytes_after
    )
    assert gc_lab.host.registry.stored_blob_digests() == before_blobs - orphaned
    assert pull_everything(gc_lab.host.registry.url) == []
    assert result.integrity.checked
    assert result.integrity.ok
    assert result.integrity.tags_checked >= 5
    assert 0 < result.offline_seconds < 15
    assert result.new_allocation not in first_alloc
    assert gc_lab.job.wait_restored()
    assert gc_lab.job.stops == 1
    assert gc_lab.job.starts == 1


async def test_dry_run_refuses_delete_untagged_on_2x_and_changes_nothing(
    gc_lab: GCLab,
) -> None:
    scenario = gc_lab.host.scenario
    assert scenario is not None
    before_blobs = gc_lab.host.registry.stored_blob_digests()
    handle = await gc_lab.start(gc_lab.config())  # defaults: dry run, -m wanted
    result = await handle.result()
    assert result.dry_run
    assert result.flags == ["--dry-run"]
    assert [r.what for r in result.refusals] == ["--delete-untagged"]
    assert "#3004" in result.refusals[0].reason
    assert (result.blobs_marked, result.blobs_deleted) == (27, 3)
    sizes = scenario.blob_sizes()
    assert result.blob_bytes_deleted == sum(
        sizes[d] for d in scenario.blobs_of("deleted:gone")
    )
    assert result.disk_bytes_reclaimed == 0
    assert gc_lab.host.registry.stored_blob_digests() == before_blobs
    assert pull_everything(gc_lab.host.registry.url) == []


async def test_delete_untagged_passes_on_3x(gc_lab: GCLab) -> None:
    version = ["echo", "registry github.com/distribution/distribution/v3 v3.0.0"]
    handle = await gc_lab.start(gc_lab.config(version_command=version))
    result = await handle.result()
    assert result.gc_version == "3.0.0"
    assert result.flags == ["--dry-run", "--delete-untagged"]
    assert result.refusals == []
    # (the binary really is 2.8: its -m counts, on a dry run)
    assert (result.blobs_marked, result.blobs_deleted, result.manifests_deleted) == (
        16,
        14,
        5,
    )


async def test_integrity_check_catches_the_broken_multi_arch_index(
    gc_lab: GCLab,
) -> None:
    """Allowing -m on 2.8 breaks every index's children: the check must say so."""
    scenario = gc_lab.host.scenario
    assert scenario is not None
    config = gc_lab.config(dry_run=False, allow_delete_untagged_on_v2=True)
    handle = await gc_lab.start(config)
    with pytest.raises(WorkflowFailureError) as caught:
        await handle.result()
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "RegistryIntegrityBroken"
    result = RegistryGCView().failed_result(caught.value)
    assert result is not None
    assert result.flags == ["--delete-untagged"]
    broken = {(b.repository, b.kind, b.digest) for b in result.integrity.broken}
    for repo, key in (("lab/multi", "multi"), ("lab/multi-oci", "multi-oci")):
        for arch in ("amd64", "arm64"):
            digest = scenario.digest(f"{key}:{arch}")
            assert (repo, "child-manifest", digest) in broken
    assert gc_lab.job.wait_restored()


async def test_empty_storage_fails_loudly_before_touching_the_registry(
    gc_lab: GCLab,
) -> None:
    empty = f"{gc_lab.host.node_dir}/empty"
    (gc_lab.host.mount_source / "empty").mkdir(exist_ok=True)
    handle = await gc_lab.start(gc_lab.config(registry_data_dir=empty))
    with pytest.raises(WorkflowFailureError) as caught:
        await handle.result()
    assert isinstance(caught.value.cause, ApplicationError)
    assert "no registry storage" in caught.value.cause.message
    assert "not touched" in caught.value.cause.message
    assert gc_lab.job.stops == 0
    assert gc_lab.job.wait_restored()


async def test_gc_on_an_unmounted_root_fails_and_restores(gc_lab: GCLab) -> None:
    """Measured storage is fine but GC's config points at an empty root:
    garbage-collect exits 1 ('Path not found'), never '0 reclaimed'."""
    empty = gc_lab.host.mount_source / "empty-root.yml"
    empty.write_text(
        gc_lab.host.gc_config.read_text().replace(
            gc_lab.host.data_dir, f"{gc_lab.host.node_dir}/nothing-here"
        )
    )
    argv = gc_lab.host.gc_config_fields()["gc_command"]
    handle = await gc_lab.start(gc_lab.config(gc_command=[*argv[:-1], str(empty)]))
    with pytest.raises(WorkflowFailureError) as caught:
        await handle.result()
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "RegistryGCFailed"
    assert "Path not found" in cause.message
    assert gc_lab.job.wait_restored()


async def test_prune_guard_sees_the_running_gc(
    gc_lab: GCLab, temporal_client: Client
) -> None:
    """The node cleanup's docker prune asks Temporal and keeps off the node."""
    gc_lab.host.slow_gc(30)
    handle = await gc_lab.start(gc_lab.config(), workflow_id=REGISTRY_GC_WORKFLOW_ID)
    try:
        await gc_lab.wait_step(handle, StepName.GC)
        env = ActivityEnvironment(client=temporal_client)
        held = await env.run(registry_gc_holds, "registry-1")
        assert "registry-gc is running on registry-1" in held
        assert await env.run(registry_gc_holds, "node-2") == ""
        # A second run under the fixed id is refused.
        with pytest.raises(WorkflowAlreadyStartedError):
            await gc_lab.start(gc_lab.config(), workflow_id=REGISTRY_GC_WORKFLOW_ID)
    finally:
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    assert (
        await ActivityEnvironment(client=temporal_client).run(
            registry_gc_holds, "registry-1"
        )
        == ""
    )
    assert gc_lab.job.wait_restored()
