"""The backup role's activities, built from the worker's shared clients."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from infraops.backup.activities import BackupActivities
from infraops.backup.drill import DrillActivities

if TYPE_CHECKING:
    from infraops.worker.clients import Clients


def backup_activities(clients: Clients) -> Sequence[Callable[..., Any]]:
    backup = BackupActivities(
        clients.backup_settings,
        clients.postgres,
        clients.nomad,
        clients.consul,
        clients.s3,
    )
    drill = DrillActivities(clients.backup_settings, clients.postgres)
    return [
        backup.prepare_run,
        backup.write_manifest,
        backup.snapshot,
        backup.plan_postgres,
        backup.dump_globals,
        backup.dump_database,
        backup.abort_stale_uploads,
        backup.upload,
        backup.evict,
        backup.local_retention,
        backup.s3_retention,
        drill.restore_drill,
    ]
