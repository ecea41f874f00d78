"""JSON logs on stdout, one object per line, Temporal context as fields."""

from __future__ import annotations

import logging
import sys
from typing import Any

from pythonjsonlogger.json import JsonFormatter
from temporalio import activity, workflow

CORE_LOGGER = "temporalio.core"


class _TemporalFields(logging.Filter):
    """Flatten the SDK's context objects into plain, serialisable fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields: dict[str, Any] = record.__dict__
        core = fields.pop("temporal_log", None)
        if core is not None:
            fields["core_target"] = core.target
            fields["core_fields"] = {k: str(v) for k, v in core.fields.items()}
        for key in ("temporal_workflow", "temporal_activity"):
            context = fields.pop(key, None)
            if isinstance(context, dict):
                fields.update(
                    {k: v for k, v in context.items() if isinstance(v, str | int)}
                )
        return True


def configure_logging(level: str = "INFO") -> None:
    """Send every log record, the SDK core's included, to stdout as JSON."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        JsonFormatter(
            "{asctime}{levelname}{name}{message}",
            style="{",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            datefmt="%Y-%m-%dT%H:%M:%S%z",
        )
    )
    handler.addFilter(_TemporalFields())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Quiet chatty libraries; their warnings still come through.
    for noisy in ("asyncssh", "httpx", "httpcore", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    workflow.logger.workflow_info_on_message = False
    activity.logger.activity_info_on_message = False
