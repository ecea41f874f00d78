"""`infraops run backup`, kept apart from run.py's wiring."""

from __future__ import annotations

from typing import Any


def run_backup(
    source: str | None,
    overrides: dict[str, Any],
    *,
    as_json: bool,
    local_worker: bool,
    wait: bool,
) -> int:
    import asyncio

    from infraops.backup.models import BackupConfig
    from infraops.cli._backup_view import BackupView
    from infraops.cli._input import build_config
    from infraops.cli._session import Launch, launch
    from infraops.worker.roles import BACKUP

    config = build_config(BackupConfig, source, overrides)
    request = Launch(
        role=BACKUP,
        workflow=BACKUP.workflows[0],
        config=config,
        id_prefix="backup",
        local_worker=local_worker,
        wait=wait,
        as_json=as_json,
    )
    return asyncio.run(launch(request, BackupView()))
