"""Where the registry ends when any step fails, times out or is cancelled.

Every case but the stranded one ends with the job at count 1, one running
allocation, the real registry process serving, and no GC left on the node.
Steps before the scale-down must not touch the registry at all.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError, CancelledError

from infraops.registry_gc.models import StepName, StepStatus
from tests.integration.registry_gc.conftest import GCLab

pytestmark = pytest.mark.lab

BEFORE_SCALE = {StepName.LOCATE, StepName.PROBE, StepName.MEASURE_BEFORE}
JOB_PATH = r"^/v1/job/registry$"
SCALE_PATH = r"^/v1/job/registry/scale$"
ALLOCS_PATH = r"^/v1/job/registry/allocations$"


@dataclass
class Case:
    step: StepName
    config: dict[str, Any] = field(default_factory=dict)
    arrange: Callable[[GCLab], None] = lambda lab: None
    expect: str = ""  # in the failure message


def _after_scale_down(lab: GCLab, action: Callable[[], object]) -> None:
    """Run `action` (in the sim's lock) the moment the job's count drops to 0."""
    cluster = lab.sim.cluster

    def watch() -> None:
        job = cluster.find_job("registry", None)
        ok = lab.sim.wait_until(
            lambda: job.groups[0].count == 0, timeout=20, interval=0.001
        )
        assert ok
        action()

    threading.Thread(target=watch, daemon=True).start()


def _no_config(lab: GCLab) -> dict[str, Any]:
    argv = lab.host.gc_config_fields()["gc_command"]
    return {"gc_command": [*argv[:-1], "/nonexistent/config.yml"]}


FAILURES = [
    Case(
        StepName.LOCATE,
        arrange=lambda lab: lab.sim.inject("GET", JOB_PATH, 500, "boom", times=None),
        expect="FindRegistryNode",
    ),
    Case(StepName.PROBE, config={"version_command": ["false"]}, expect="cannot run"),
    Case(
        StepName.MEASURE_BEFORE,
        arrange=lambda lab: lab.host.du_fault(fail=True),
        expect="cannot measure",
    ),
    Case(
        StepName.SCALE_DOWN,
        arrange=lambda lab: lab.sim.inject(
            "POST", SCALE_PATH, 403, "Permission denied"
        ),
        expect="Permission denied",
    ),
    Case(
        StepName.DRAIN,
        arrange=lambda lab: _after_scale_down(
            lab, lambda: lab.sim.inject("GET", ALLOCS_PATH, 403, "Permission denied")
        ),
        expect="Permission denied",
    ),
    Case(StepName.GC, expect="garbage-collect exited 1"),
]

TIMEOUTS = [
    Case(
        StepName.LOCATE,
        config={"step_timeout": 1},
        arrange=lambda lab: lab.sim.inject_delay("GET", JOB_PATH, 4, times=None),
    ),
    Case(StepName.PROBE, config={"step_timeout": 1, "version_command": ["sleep", "5"]}),
    Case(
        StepName.MEASURE_BEFORE,
        config={"step_timeout": 1},
        arrange=lambda lab: lab.host.du_fault(sleep=5),
    ),
    Case(
        StepName.SCALE_DOWN,
        # The delayed scale-downs still land, after the activity gave up; the
        # compensation's CAS fence must win against them.
        config={"step_timeout": 1, "restore_timeout": 40},
        arrange=lambda lab: lab.sim.inject_delay("POST", SCALE_PATH, 3, times=3),
    ),
    Case(
        StepName.DRAIN,
        config={"drain_timeout": 1.5},
        arrange=lambda lab: setattr(lab.sim.cluster, "stop_delay", 20.0),
    ),
    Case(
        StepName.GC,
        config={"gc_timeout": 1.5},
        arrange=lambda lab: lab.host.slow_gc(30),
    ),
]


async def _assert_restored(lab: GCLab, *, touched: bool) -> None:
    assert await asyncio.to_thread(lab.job.wait_restored, 15), (
        lab.job.count(),
        lab.job.running_allocs(),
    )
    assert lab.job.count() == 1
    assert len(lab.job.running_allocs()) == 1
    assert lab.host.registry.running
    assert not lab.host.gc_running()
    if not touched:
        assert lab.job.stops == 0
        assert lab.job.starts == 0


async def _fails(handle: Any) -> BaseException:
    with pytest.raises(WorkflowFailureError) as caught:
        await handle.result()
    assert caught.value.cause is not None
    return caught.value.cause


@pytest.mark.parametrize("case", FAILURES, ids=lambda c: f"fail-{c.step.value}")
async def test_step_failure(gc_lab: GCLab, case: Case) -> None:
    config = dict(case.config)
    if case.step is StepName.GC:
        config |= _no_config(gc_lab)
    case.arrange(gc_lab)
    handle = await gc_lab.start(gc_lab.config(**config))
    cause = await _fails(handle)
    assert isinstance(cause, ApplicationError)
    assert case.expect in cause.message, cause.message
    progress = await gc_lab.progress(handle)
    assert {s.name: s.status for s in progress.steps}[case.step] is StepStatus.FAILED
    gc_lab.sim.clear_faults()
    await _assert_restored(gc_lab, touched=case.step not in BEFORE_SCALE)


@pytest.mark.parametrize("case", TIMEOUTS, ids=lambda c: f"timeout-{c.step.value}")
async def test_step_timeout(gc_lab: GCLab, case: Case) -> None:
    case.arrange(gc_lab)
    handle = await gc_lab.start(gc_lab.config(**case.config))
    cause = await _fails(handle)
    # The step timed out and the saga said so; a workflow that itself ran out
    # of time would be a hang, not this.
    assert isinstance(cause, ApplicationError), cause
    assert cause.type == "RegistryGCFailed", cause
    assert "timed out" in cause.message, cause.message
    gc_lab.sim.clear_faults()
    await _assert_restored(gc_lab, touched=case.step not in BEFORE_SCALE)


CANCELS: list[tuple[StepName, dict[str, Any], Callable[[GCLab], None]]] = [
    (
        StepName.LOCATE,
        {},
        lambda lab: lab.sim.inject_delay("GET", JOB_PATH, 3),
    ),
    (StepName.PROBE, {"version_command": ["sleep", "3"]}, lambda lab: None),
    (StepName.MEASURE_BEFORE, {}, lambda lab: lab.host.du_fault(sleep=3)),
    (
        StepName.SCALE_DOWN,
        {},
        lambda lab: lab.sim.inject_delay("POST", SCALE_PATH, 2),
    ),
    (
        StepName.DRAIN,
        {},
        lambda lab: setattr(lab.sim.cluster, "stop_delay", 2.0),
    ),
    (StepName.GC, {}, lambda lab: lab.host.slow_gc(30)),
    (
        StepName.RESTORE,
        {},
        lambda lab: setattr(lab.sim.cluster, "start_delay", 2.0),
    ),
]


@pytest.mark.parametrize(
    ("step", "config", "arrange"),
    CANCELS,
    ids=[f"cancel-{c[0].value}" for c in CANCELS],
)
async def test_cancel_during_step(
    gc_lab: GCLab,
    step: StepName,
    config: dict[str, Any],
    arrange: Callable[[GCLab], None],
) -> None:
    arrange(gc_lab)
    handle = await gc_lab.start(gc_lab.config(**config))
    await gc_lab.wait_step(handle, step)
    await handle.cancel()
    cause = await _fails(handle)
    assert isinstance(cause, CancelledError), cause
    await _assert_restored(gc_lab, touched=step not in BEFORE_SCALE)
    gc_lab.host.clear_du_faults()


async def test_cancel_during_compensation_after_gc_failure(gc_lab: GCLab) -> None:
    gc_lab.sim.cluster.start_delay = 2.0
    handle = await gc_lab.start(gc_lab.config(**_no_config(gc_lab)))
    await gc_lab.wait_step(handle, StepName.RESTORE, StepStatus.COMPENSATING)
    await handle.cancel()
    await handle.cancel()  # a second Ctrl-C changes nothing
    cause = await _fails(handle)
    # The compensation finished: the GC failure is reported, the registry is back.
    assert isinstance(cause, ApplicationError), cause
    assert cause.type == "RegistryGCFailed"
    assert "the registry is back" in cause.message
    await _assert_restored(gc_lab, touched=True)


async def test_scale_back_failing_logs_critical_and_joins_errors(
    gc_lab: GCLab, caplog: pytest.LogCaptureFixture
) -> None:
    gc_lab.host.slow_gc(1.0)
    handle = await gc_lab.start(gc_lab.config(**_no_config(gc_lab), restore_timeout=3))
    await gc_lab.wait_step(handle, StepName.GC)
    gc_lab.sim.inject("POST", SCALE_PATH, 403, "Permission denied", times=None)
    with caplog.at_level(logging.CRITICAL):
        cause = await _fails(handle)
    assert isinstance(cause, ApplicationError)
    assert cause.type == "RegistryStranded"
    assert "garbage-collect exited 1" in cause.message  # the first error
    assert "Permission denied" in cause.message  # and the second, joined
    assert "nomad job scale registry registry 1" in cause.message
    critical = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert len(critical) == 1, [r.getMessage() for r in critical]
    line = critical[0].getMessage()
    assert "REGISTRY LEFT SCALED DOWN" in line
    assert "`nomad job scale registry registry 1`" in line
    # Stranded, as reported: count 0, nothing running, GC stopped.
    assert gc_lab.job.count() == 0
    assert gc_lab.job.running_allocs() == []
    assert not gc_lab.host.registry.running
    assert not gc_lab.host.gc_running()


async def test_deployments_block_scaling_until_they_finish(gc_lab: GCLab) -> None:
    """With an update block every scale starts a deployment; the next scale
    is refused ('blocked due to active deployment') until it completes."""
    gc_lab.sim.cluster.deployment_duration = 1.5
    gc_lab.sim.cluster.find_job("registry", None).groups[0].update = True
    handle = await gc_lab.start(gc_lab.config(dry_run=True))
    result = await handle.result()
    assert result.integrity.ok
    blocked = [
        r
        for r in gc_lab.sim.requests
        if r.method == "POST" and r.path.endswith("/scale")
    ]
    assert len(blocked) >= 3  # down, refused while deploying, up
    await _assert_restored(gc_lab, touched=True)


async def test_dropped_scale_connection_is_retried_without_double_scaling(
    gc_lab: GCLab,
) -> None:
    """A connection dropped on the scale-down is retried; the retry reads the
    count first, so exactly one scale-down and one scale-up reach the job."""
    gc_lab.sim.inject("POST", SCALE_PATH, None)  # close without a reply
    handle = await gc_lab.start(gc_lab.config())
    result = await handle.result()
    assert result.integrity.ok
    assert gc_lab.sim.job("registry")["Version"] == 2  # down once, up once
    await _assert_restored(gc_lab, touched=True)
