"""Where the Trivy report fixtures live."""

from __future__ import annotations

from pathlib import Path

import pytest

OWN = Path(__file__).parents[2] / "fixtures" / "trivy"
SHARED = Path("/work/shared/fixtures/trivy")


def shared_reports() -> list[Path]:
    return sorted(SHARED.glob("*.json")) if SHARED.is_dir() else []


def own_reports() -> list[Path]:
    return sorted(OWN.glob("*.json"))


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is not present (the shared real Trivy reports)")
    return SHARED
