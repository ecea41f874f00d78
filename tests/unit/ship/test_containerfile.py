"""What can be checked of the image without a container engine."""

from __future__ import annotations

import re
from pathlib import Path

from infraops.backup.pgtools import TOOLS
from infraops.config import TrivySettings

ROOT = Path(__file__).resolve().parents[3]
CONTAINERFILE = (ROOT / "Containerfile").read_text()


def runtime_stage() -> str:
    return CONTAINERFILE.split("AS runtime", 1)[1]


def test_version_label_is_dot_version() -> None:
    """The image's version label defaults to what .version says."""
    match = re.search(r"^ARG VERSION=(\S+)$", CONTAINERFILE, re.MULTILINE)

    assert match is not None
    assert match[1] == (ROOT / ".version").read_text().strip()
    assert 'org.opencontainers.image.version="${VERSION}"' in CONTAINERFILE


def test_every_binary_the_code_calls_is_installed() -> None:
    """pg_dump and friends, trivy and tini are all put in the runtime image."""
    stage = runtime_stage()

    assert set(TOOLS) == {"pg_dump", "pg_dumpall", "pg_restore"}
    assert (
        'apt-get install -y --no-install-recommends "postgresql-client-${major}"'
        in stage
    )
    assert TrivySettings().trivy_bin == "trivy"
    assert "-C /usr/local/bin trivy" in stage
    assert "sha256sum -c -" in stage
    assert re.search(r'ENTRYPOINT \["/usr/bin/tini", "--", "infraops"\]', stage)
    assert " tini " in stage


def test_python_dependencies_are_the_packages_declared() -> None:
    """The runtime stage installs the wheel alone, so its declared dependencies."""
    installs = re.findall(r"pip install[^\n]*", runtime_stage())

    assert installs == ["pip install --no-cache-dir /tmp/*.whl && rm /tmp/*.whl \\"]


def test_runs_as_a_non_root_user() -> None:
    """The image drops root."""
    assert re.search(r"^USER infraops$", runtime_stage(), re.MULTILINE)
