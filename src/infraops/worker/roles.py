"""Every role a worker can host: its task queue, workflows and activities."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic_settings import BaseSettings

from infraops.backup.models import BackupConfig, DrillConfig
from infraops.backup.wiring import backup_activities
from infraops.backup.workflows import BackupWorkflow, RestoreDrillWorkflow
from infraops.cleanup.activities import CleanupActivities
from infraops.cleanup.models import CleanupConfig
from infraops.cleanup.workflows import CleanupWorkflow
from infraops.config import (
    BackupSettings,
    ConsulSettings,
    NomadSettings,
    PostgresSettings,
    S3Settings,
    SSHSettings,
    TrivySettings,
)
from infraops.registry_gc.activities import RegistryGCActivities
from infraops.registry_gc.models import RegistryGCConfig
from infraops.registry_gc.workflows import RegistryGCWorkflow
from infraops.trivy.activities import TrivyActivities
from infraops.trivy.models import ScanConfig
from infraops.trivy.workflows import ScanWorkflow
from infraops.worker.clients import Clients


@dataclass(frozen=True)
class Workflow:
    """A workflow as schedules and `infraops run` know it."""

    name: str
    definition: type
    config: type[Any]


@dataclass(frozen=True)
class Role:
    name: str
    task_queue: str
    workflows: Sequence[Workflow]
    activities: Callable[[Clients], Sequence[Callable[..., Any]]]
    settings: Sequence[type[BaseSettings]]
    # Run once by the worker before it polls (e.g. schema migrations).
    startup: Callable[[Clients], Awaitable[None]] | None = None


def _cleanup_activities(clients: Clients) -> Sequence[Callable[..., Any]]:
    cleanup = CleanupActivities(clients.nomad, clients.ssh)
    return [
        cleanup.list_nodes,
        cleanup.scan_node,
        cleanup.remove_candidates,
        cleanup.prune_docker,
        *_registry_gc_activities(clients),
    ]


def _registry_gc_activities(clients: Clients) -> list[Callable[..., Any]]:
    gc = RegistryGCActivities(clients.nomad, clients.ssh)
    return [
        gc.find_node,
        gc.probe,
        gc.measure,
        gc.scale,
        gc.wait_drained,
        gc.run_gc,
        gc.restore,
        gc.check_integrity,
    ]


CLEANUP = Role(
    name="cleanup",
    task_queue="cleanup-task-queue",
    workflows=[
        Workflow("Cleanup", CleanupWorkflow, CleanupConfig),
        Workflow("RegistryGC", RegistryGCWorkflow, RegistryGCConfig),
    ],
    activities=_cleanup_activities,
    settings=[NomadSettings, SSHSettings],
)


def _trivy_activities(clients: Clients) -> Sequence[Callable[..., Any]]:
    trivy = TrivyActivities(clients.nomad, clients.trivy, clients.trivy_store)
    return [
        trivy.start_run,
        trivy.discover,
        trivy.plan,
        trivy.scan_image,
        trivy.finish_run,
    ]


async def _trivy_startup(clients: Clients) -> None:
    await clients.trivy_store.migrate()


TRIVY = Role(
    name="trivy",
    task_queue="trivy-task-queue",
    workflows=[Workflow("Scan", ScanWorkflow, ScanConfig)],
    activities=_trivy_activities,
    settings=[NomadSettings, TrivySettings],
    startup=_trivy_startup,
)

BACKUP = Role(
    name="backup",
    task_queue="backup-task-queue",
    workflows=[
        Workflow("Backup", BackupWorkflow, BackupConfig),
        Workflow("RestoreDrill", RestoreDrillWorkflow, DrillConfig),
    ],
    activities=backup_activities,
    settings=[
        BackupSettings,
        PostgresSettings,
        NomadSettings,
        ConsulSettings,
        S3Settings,
    ],
)

ROLES = {role.name: role for role in (CLEANUP, TRIVY, BACKUP)}


def role_named(name: str) -> Role:
    """The role called `name`, or a `KeyError` listing the known ones."""
    try:
        return ROLES[name]
    except KeyError:
        known = ", ".join(sorted(ROLES))
        raise KeyError(f"unknown role {name!r}; known roles: {known}") from None
