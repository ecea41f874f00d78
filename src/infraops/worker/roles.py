"""Every role a worker can host: its task queue, workflows and activities."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic_settings import BaseSettings

from infraops.cleanup.activities import CleanupActivities
from infraops.cleanup.models import CleanupConfig
from infraops.cleanup.workflows import CleanupWorkflow
from infraops.config import NomadSettings, SSHSettings
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


def _cleanup_activities(clients: Clients) -> Sequence[Callable[..., Any]]:
    cleanup = CleanupActivities(clients.nomad, clients.ssh)
    return [
        cleanup.list_nodes,
        cleanup.scan_node,
        cleanup.remove_candidates,
        cleanup.prune_docker,
    ]


CLEANUP = Role(
    name="cleanup",
    task_queue="cleanup-task-queue",
    workflows=[Workflow("Cleanup", CleanupWorkflow, CleanupConfig)],
    activities=_cleanup_activities,
    settings=[NomadSettings, SSHSettings],
)

ROLES = {role.name: role for role in (CLEANUP,)}


def role_named(name: str) -> Role:
    """The role called `name`, or a `KeyError` listing the known ones."""
    try:
        return ROLES[name]
    except KeyError:
        known = ", ".join(sorted(ROLES))
        raise KeyError(f"unknown role {name!r}; known roles: {known}") from None
