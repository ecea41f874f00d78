"""Image references normalise the way Docker reads them."""

from __future__ import annotations

import pytest

from infraops.trivy.references import InvalidReference, normalise

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("nginx", "docker.io/library/nginx:latest"),
        ("nginx:1.25", "docker.io/library/nginx:1.25"),
        ("library/nginx:1.25", "docker.io/library/nginx:1.25"),
        ("docker.io/nginx:1.25", "docker.io/library/nginx:1.25"),
        ("index.docker.io/library/nginx:1.25", "docker.io/library/nginx:1.25"),
        ("docker://docker.io/library/redis:7", "docker.io/library/redis:7"),
        ("grafana/loki:3.1.0", "docker.io/grafana/loki:3.1.0"),
        ("ghcr.io/org/app", "ghcr.io/org/app:latest"),
        ("registry.lab:5000/team/app:1.4", "registry.lab:5000/team/app:1.4"),
        ("localhost:5000/app", "localhost:5000/app:latest"),
        ("localhost/app:2", "localhost/app:2"),
        ("REGISTRY.Lab:5000/team/app:v1", "registry.lab:5000/team/app:v1"),
        (f"nginx@{DIGEST}", f"docker.io/library/nginx@{DIGEST}"),
        (f"nginx:1.25@{DIGEST}", f"docker.io/library/nginx@{DIGEST}"),
        (
            f"registry.lab:5000/app@{DIGEST.upper()[:7].lower()}{DIGEST[7:]}",
            f"registry.lab:5000/app@{DIGEST}",
        ),
        (
            "  quay.io/prometheus/node-exporter:v1.8.2 ",
            "quay.io/prometheus/node-exporter:v1.8.2",
        ),
    ],
)
def test_normalises(written: str, canonical: str) -> None:
    assert normalise(written).canonical == canonical


def test_digest_kept_alongside_tag() -> None:
    ref = normalise(f"nginx:1.25@{DIGEST}")

    assert (ref.tag, ref.digest) == ("1.25", DIGEST)
    assert ref.repository == "docker.io/library/nginx"


def test_port_is_not_a_tag() -> None:
    ref = normalise("registry.lab:5000/team/app")

    assert (ref.registry, ref.path, ref.tag) == (
        "registry.lab:5000",
        "team/app",
        "latest",
    )


@pytest.mark.parametrize(
    "written",
    [
        "",
        "nginx:${NOMAD_META_version}",
        "Nginx:1.25",
        "nginx@sha256:short",
        "nginx:bad tag",
        "registry.lab:5000/",
        "nginx:-dash",
    ],
)
def test_rejects(written: str) -> None:
    with pytest.raises(InvalidReference):
        normalise(written)
