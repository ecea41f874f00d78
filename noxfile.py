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
    """Boot the full lab, start the three workers, run every workflow once."""
    _lab(session)
    session.run("python", "-m", "tests.lab.demo", *session.posargs)


BENCHMARKS = [
    "cli_startup",
    "cleanup_parallel",
    "registry_offline",
    "trivy_throughput",
    "backup_pg",
]


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks; each prints a ratio against a baseline from the same run.

    `nox -s bench -- cli_startup` runs one; the backup one writes about 1 GB.
    """
    _lab(session)
    for name in session.posargs or BENCHMARKS:
        session.run("python", "-m", f"bench.{name}")


@nox.session(python=PYTHON)
def release(session: nox.Session) -> None:
    """Check the version was bumped, build wheel and sdist, run the ship checks."""
    import subprocess
    from pathlib import Path

    version = Path(".version").read_text().strip()
    tags = subprocess.run(
        ["git", "tag", "--list", "v*"], capture_output=True, text=True, check=True
    ).stdout.split()
    if f"v{version}" in tags:
        session.error(f".version says {version}, which is already tagged: bump it")
    if f"## {version}" not in Path("CHANGELOG.md").read_text():
        session.error(f"CHANGELOG.md has no '## {version}' section")
    session.install("build", "-e", ".[test]")
    session.run("python", "-m", "build", "--outdir", "dist", ".")
    session.run("pytest", "tests/unit/ship", "-q")
    session.log(f"ready: tag v{version} and build the image with VERSION={version}")
