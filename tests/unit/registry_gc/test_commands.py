"""Command templates, version probing, measurement parsing and the 2.x guard."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from infraops.registry_gc import commands
from infraops.registry_gc.models import GCProbe, RegistryGCConfig


def test_default_gc_command_mounts_data_and_the_jobs_own_config() -> None:
    config = RegistryGCConfig(registry_config_path="/opt/registry/config.yml")
    argv = commands.gc_argv(config, ["--dry-run", "--delete-untagged"])
    assert argv == [
        "docker", "run", "--rm", "--name", "infraops-registry-gc",
        "-v", "/mnt/gdrive/munchbox-data/registry:/var/lib/registry",
        "-v", "/opt/registry/config.yml:/etc/distribution/config.yml:ro",
        "registry:3", "garbage-collect", "--dry-run", "--delete-untagged",
        "/etc/distribution/config.yml",
    ]  # fmt: skip


def test_without_a_config_path_the_images_own_default_is_used() -> None:
    argv = commands.gc_argv(RegistryGCConfig(registry_image="registry:2.8"), [])
    assert "-v" in argv
    assert not any(a.endswith(":ro") for a in argv)
    assert argv[-1] == "/etc/docker/registry/config.yml"
    assert argv[-2] == "garbage-collect"
    assert commands.image_config_path("registry:3") == "/etc/distribution/config.yml"
    assert commands.image_config_path("localhost:5000/registry") == (
        "/etc/distribution/config.yml"
    )


def test_flags_expand_as_arguments_or_inline() -> None:
    config = RegistryGCConfig(
        gc_command=["sh", "-c", "gc {flags}", "x", "{flags}", "{data_dir}"]
    )
    argv = commands.gc_argv(config, ["--dry-run", "--delete-untagged"])
    assert argv == [
        "sh", "-c", "gc --dry-run --delete-untagged", "x",
        "--dry-run", "--delete-untagged", "/mnt/gdrive/munchbox-data/registry",
    ]  # fmt: skip
    assert commands.gc_argv(config, []) == [
        "sh",
        "-c",
        "gc ",
        "x",
        config.registry_data_dir,
    ]


def test_unknown_placeholders_are_refused_at_validation() -> None:
    with pytest.raises(ValidationError, match="unknown placeholder"):
        RegistryGCConfig(gc_command=["gc", "{secret}"])
    with pytest.raises(ValidationError):
        RegistryGCConfig(gc_command=[])
    with pytest.raises(ValidationError):
        RegistryGCConfig(registry_data_dir="/")
    with pytest.raises(ValidationError):
        RegistryGCConfig(drain_timeout=0)


@pytest.mark.parametrize(
    ("output", "version", "major"),
    [
        (
            "/usr/bin/docker-registry github.com/docker/distribution 2.8.2+ds1",
            "2.8.2+ds1",
            2,
        ),
        ("registry github.com/distribution/distribution/v3 v3.0.0", "3.0.0", 3),
        ("registry github.com/distribution/distribution/v3 v3.1.1\n", "3.1.1", 3),
        ("something else", "", None),
        ("", "", None),
    ],
)
def test_parse_version(output: str, version: str, major: int | None) -> None:
    probe = commands.parse_version(output)
    assert (probe.version, probe.major) == (version, major)


def _probe(major: int | None) -> GCProbe:
    return GCProbe(version=f"{major}.0.0" if major else "", major=major, output="")


def test_delete_untagged_is_refused_on_2x_and_unknown_versions() -> None:
    config = RegistryGCConfig(dry_run=False, delete_untagged=True)
    for probe in (_probe(2), _probe(None)):
        flags, refusals = commands.decide_flags(config, probe)
        assert flags == []
        assert [r.what for r in refusals] == ["--delete-untagged"]
    assert commands.decide_flags(config, _probe(3)) == (["--delete-untagged"], [])
    allowed = config.model_copy(update={"allow_delete_untagged_on_v2": True})
    assert commands.decide_flags(allowed, _probe(2)) == (["--delete-untagged"], [])
    kept = RegistryGCConfig(delete_untagged=False)
    assert commands.decide_flags(kept, _probe(2)) == (["--dry-run"], [])


def test_parse_usage_and_blob_sizes() -> None:
    assert commands.parse_usage("5015043\t30\n") == (5015043, 30)
    with pytest.raises(ValueError, match="unexpected"):
        commands.parse_usage("30\n")
    listing = "1024 sha256/ab/abcdef/data\n7 sha256/cd/cdef01/data\nnoise\n"
    assert commands.parse_blob_sizes(listing) == {
        "sha256:abcdef": 1024,
        "sha256:cdef01": 7,
    }


def test_group_defaults_to_the_job_name() -> None:
    assert RegistryGCConfig(job_name="hub").group == "hub"
    assert RegistryGCConfig(job_name="hub", group_name="srv").group == "srv"
