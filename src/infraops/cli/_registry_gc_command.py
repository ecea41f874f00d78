"""The body of `infraops run registry-gc`."""

from __future__ import annotations

import asyncio
from typing import Any


def run_registry_gc(
    input_file: str | None,
    overrides: dict[str, Any],
    *,
    as_json: bool,
    local_worker: bool,
    wait: bool,
) -> int:
    """Start RegistryGC under its fixed id and follow it; the exit code."""
    from infraops.cli._input import build_config
    from infraops.cli._registry_gc_view import RegistryGCView
    from infraops.cli._session import Launch, launch
    from infraops.registry_gc.models import REGISTRY_GC_WORKFLOW_ID, RegistryGCConfig
    from infraops.worker.roles import CLEANUP

    config = build_config(RegistryGCConfig, input_file, overrides)
    request = Launch(
        role=CLEANUP,
        workflow=next(w for w in CLEANUP.workflows if w.name == "RegistryGC"),
        config=config,
        id_prefix=REGISTRY_GC_WORKFLOW_ID,
        local_worker=local_worker,
        wait=wait,
        as_json=as_json,
        workflow_id=REGISTRY_GC_WORKFLOW_ID,
        # Ctrl-C cancels; the compensation brings the registry back and the
        # view keeps following until it has.
        cancel_on_interrupt=True,
    )
    return asyncio.run(launch(request, RegistryGCView()))
