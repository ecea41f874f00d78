"""The commands RegistryGC runs on the registry node, built from templates.

A template is an argv list. Each element is formatted with the placeholders in
`models.PLACEHOLDERS`; an element that is exactly `{flags}` expands to zero or
more arguments (`--dry-run`, `--delete-untagged`), anywhere else `{flags}` is
the flags joined by spaces. The result runs through `SSHClient.run`, which
quotes every argument, so no value is ever interpreted by the remote shell
unless a template deliberately runs `sh -c`.
"""

from __future__ import annotations

import re

from infraops.registry_gc.models import (
    GC_CONTAINER_NAME,
    GCProbe,
    Refusal,
    RegistryGCConfig,
)

DISTRIBUTION_CONFIG = "/etc/distribution/config.yml"  # registry:3
DOCKER_REGISTRY_CONFIG = "/etc/docker/registry/config.yml"  # registry:2
CONTAINER_DATA_DIR = "/var/lib/registry"

_VERSION = re.compile(r"(?<![\w.])v?(\d+)\.(\d+)(?:\.(\d+))?([-+~][\w.+~-]*)?")

# Fails (exit 3) unless the data dir holds registry storage; then prints
# `<du -sb bytes>\t<blob data files>`. An unmounted or empty root must never
# look like a registry with nothing to collect.
MEASURE_SCRIPT = r"""
set -o pipefail
root=$1
if [ ! -d "$root/docker/registry/v2/repositories" ]; then
  echo "no registry storage under $root" \
    "(no docker/registry/v2/repositories): is it mounted?" >&2
  exit 3
fi
bytes=$(du -sb -- "$root" | cut -f1) || exit 4
blobs=$(find "$root/docker/registry/v2/blobs" -type f -name data 2>/dev/null | wc -l)
printf '%s\t%s\n' "$bytes" "$blobs"
"""

# One `<size> <algorithm>/<xx>/<hex>/data` line per blob, relative to blobs/.
BLOB_SIZES_SCRIPT = r"""
cd -- "$1/docker/registry/v2/blobs" 2>/dev/null || exit 0
find . -type f -name data -printf '%s %P\n'
"""


def image_config_path(image: str) -> str:
    """Where the image keeps its default config: registry:2 and :3 differ."""
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:  # no tag (or a registry port): assume current
        return DISTRIBUTION_CONFIG
    return DOCKER_REGISTRY_CONFIG if tag.startswith("2") else DISTRIBUTION_CONFIG


def gc_flags(*, dry_run: bool, delete_untagged: bool) -> list[str]:
    flags = []
    if dry_run:
        flags.append("--dry-run")
    if delete_untagged:
        flags.append("--delete-untagged")
    return flags


def default_gc_command(config: RegistryGCConfig) -> list[str]:
    argv = [
        "docker",
        "run",
        "--rm",
        "--name",
        "{container}",
        "-v",
        "{data_dir}:" + CONTAINER_DATA_DIR,
    ]
    if config.registry_config_path:
        argv += ["-v", "{config}:{config_in_container}:ro"]
    return [*argv, "{image}", "garbage-collect", "{flags}", "{config_in_container}"]


def default_version_command() -> list[str]:
    # The image's entrypoint hands a first argument starting with - to
    # `registry`, so this prints e.g. `registry github.com/... v3.0.0`.
    return ["docker", "run", "--rm", "{image}", "--version"]


def default_stop_command() -> list[str]:
    # Succeeds only once no GC container is left; a missing one is fine.
    script = (
        'docker rm --force "$1" >/dev/null 2>&1; '
        '! docker container inspect "$1" >/dev/null 2>&1'
    )
    return ["sh", "-c", script, "stop-gc", "{container}"]


def render(
    template: list[str], config: RegistryGCConfig, flags: list[str] | None = None
) -> list[str]:
    """The argv for `template` with this config's values filled in."""
    flags = list(flags or [])
    in_container = image_config_path(config.registry_image)
    values = {
        "data_dir": config.registry_data_dir,
        "config": config.registry_config_path or in_container,
        "config_in_container": in_container,
        "image": config.registry_image,
        "flags": " ".join(flags),
        "container": GC_CONTAINER_NAME,
    }
    argv: list[str] = []
    for element in template:
        if element == "{flags}":
            argv += flags
        else:
            argv.append(element.format_map(values))
    return argv


def gc_argv(config: RegistryGCConfig, flags: list[str]) -> list[str]:
    return render(config.gc_command or default_gc_command(config), config, flags)


def version_argv(config: RegistryGCConfig) -> list[str]:
    return render(config.version_command or default_version_command(), config)


def stop_argv(config: RegistryGCConfig) -> list[str]:
    return render(config.gc_stop_command or default_stop_command(), config)


def parse_version(output: str) -> GCProbe:
    """The distribution version in `registry --version` output.

    `docker-registry github.com/docker/distribution 2.8.2+ds1` (Debian) and
    `registry github.com/distribution/distribution/v3 v3.0.0` both work; the
    `/v3` of a module path has no dot and is not taken for a version.
    """
    text = output.strip()
    for line in text.splitlines():
        for word in line.split():
            if "/" in word:
                continue
            match = _VERSION.fullmatch(word)
            if match:
                version = word.removeprefix("v")
                return GCProbe(version=version, major=int(match[1]), output=text[-300:])
    return GCProbe(version="", major=None, output=text[-300:])


def parse_usage(stdout: str) -> tuple[int, int]:
    """(`du -sb` bytes, blob files) from MEASURE_SCRIPT's output."""
    fields = stdout.strip().split("\t")
    if len(fields) != 2 or not all(field.isdigit() for field in fields):
        raise ValueError(f"unexpected storage measurement: {stdout.strip()[-200:]!r}")
    return int(fields[0]), int(fields[1])


def parse_blob_sizes(stdout: str) -> dict[str, int]:
    """digest -> size from BLOB_SIZES_SCRIPT's output."""
    sizes: dict[str, int] = {}
    for line in stdout.splitlines():
        size, _, path = line.partition(" ")
        parts = path.split("/")
        if len(parts) == 4 and parts[3] == "data" and size.isdigit():
            sizes[f"{parts[0]}:{parts[2]}"] = int(size)
    return sizes


def decide_flags(
    config: RegistryGCConfig, probe: GCProbe
) -> tuple[list[str], list[Refusal]]:
    """The GC flags to pass, and what was refused with the reason.

    distribution 2.x's `--delete-untagged` deletes the platform manifests'
    configs and layers of every multi-arch image (distribution/distribution
    #3004, #3178; fixed in 3.0 by #4285). An unknown version counts as 2.x.
    """
    delete_untagged = config.delete_untagged
    refusals: list[Refusal] = []
    old = probe.major is None or probe.major < 3
    if delete_untagged and old and not config.allow_delete_untagged_on_v2:
        delete_untagged = False
        found = f"distribution {probe.version}" if probe.version else "an unknown"
        refusals.append(
            Refusal(
                what="--delete-untagged",
                reason=(
                    f"the GC command runs {found} version; before 3.0, "
                    "--delete-untagged deletes the platform manifests of multi-arch "
                    "images (distribution/distribution#3004, #3178). Ran without "
                    "it; use a registry:3 image, or set allow_delete_untagged_on_v2 "
                    "to take the risk"
                ),
            )
        )
    return gc_flags(dry_run=config.dry_run, delete_untagged=delete_untagged), refusals
