"""Sessions: `tests`, `lint`, `demo` and `bench` (python -m nox -s NAME)."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"


def _lab(session: nox.Session) -> None:
    session.run("bash", "tests/lab/install-system-deps.sh", external=True)
    session.install("-e", ".[test]")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole test suite, on the real local lab."""
    _lab(session)
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff format and lint on everything, mypy strict on src/."""
    session.install("-e", ".[lint]")
    session.run("ruff", "format", "--check", ".")
    session.run("ruff", "check", ".")
    session.run("mypy")


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """Boot the local lab and run the cleanup workflow dry, then live."""
    _lab(session)
    session.run("python", "-m", "tests.lab.demo", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks; each prints a ratio against a baseline from the same run."""
    _lab(session)
    session.run("python", "-m", "bench.cleanup_parallel", *session.posargs)
    session.run("python", "-m", "bench.cli_startup", *session.posargs)
