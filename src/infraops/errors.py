"""The errors infraops raises, classified once at each client's boundary.

    InfraopsError
    ├── ConfigError          bad settings or input; never retried (exit 2)
    ├── TransientError       worth retrying: network blips, timeouts, 5xx
    └── PermanentError       retrying cannot help: 4xx, refused auth
        ├── HostKeyRejected  the node's host certificate did not verify
        └── HostNotEnrolled  the node presents no host certificate at all

Activities let these escape; `to_application_error` turns a permanent one into
a non-retryable Temporal failure whose type is the class name, so workflows and
the CLI can tell them apart.
"""

from __future__ import annotations

import re

from temporalio.exceptions import ApplicationError

_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@]+@")


def redact_urls(text: str) -> str:
    """`text` with the user:password part of every URL in it hidden."""
    return _URL_CREDENTIALS.sub(r"\g<scheme>***@", text)


class InfraopsError(Exception):
    """Base of every error infraops raises on purpose."""


class ConfigError(InfraopsError):
    """A setting or an input document is missing or invalid."""


class TransientError(InfraopsError):
    """A failure that may go away if the same call is tried again."""


class PermanentError(InfraopsError):
    """A failure that the same call will meet again."""


class HostKeyRejected(PermanentError):
    """The node's host key or certificate did not verify against the host CA."""


class HostNotEnrolled(PermanentError):
    """The node offers no host certificate, so its identity cannot be checked."""


def to_application_error(error: InfraopsError) -> ApplicationError:
    """Wrap `error` for Temporal, non-retryable unless it is transient."""
    return ApplicationError(
        redact_urls(str(error)),
        type=type(error).__name__,
        non_retryable=not isinstance(error, TransientError),
    )
