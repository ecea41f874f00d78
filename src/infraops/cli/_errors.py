"""Turning known failures into one clear line and a deliberate exit code."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer

P = ParamSpec("P")
R = TypeVar("R")

EXIT_OK = 0
EXIT_WORKFLOW_FAILED = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print `message` on stderr and return the Exit to raise."""
    from infraops.errors import redact_urls

    typer.echo(f"infraops: error: {redact_urls(message)}", err=True)
    return typer.Exit(code)


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Show our errors as one line, without a traceback.

    Configuration errors exit 2; a service that failed or refused exits 1.
    """

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from infraops.errors import ConfigError, InfraopsError

        try:
            return command(*args, **kwargs)
        except ConfigError as error:
            raise fail(str(error)) from None
        except InfraopsError as error:
            raise fail(str(error), EXIT_WORKFLOW_FAILED) from None

    return wrapper
