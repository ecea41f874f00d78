"""Reading `docker image prune` output: what was deleted and how much."""

from __future__ import annotations

import re

from infraops.cleanup.models import DockerPrune

# Docker prints sizes with go-units' HumanSize: decimal units, up to 4 digits.
_UNITS = {"B": 1, "kB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "PB": 10**15}
_TOTAL = re.compile(r"^Total reclaimed space:\s*([0-9.]+)\s*([kMGTP]?B)\s*$")

PRUNE_ARGV = ["docker", "image", "prune", "--force"]


def parse_prune(stdout: str) -> DockerPrune:
    """Deleted and untagged images and the reclaimed space Docker reported."""
    deleted: list[str] = []
    untagged: list[str] = []
    reclaimed: int | None = None
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("deleted: "):
            deleted.append(line.removeprefix("deleted: "))
        elif line.startswith("untagged: "):
            untagged.append(line.removeprefix("untagged: "))
        elif match := _TOTAL.match(line):
            reclaimed = round(float(match[1]) * _UNITS[match[2]])
    if reclaimed is None:
        tail = stdout.strip()[-200:] or "(nothing)"
        raise ValueError(f"no 'Total reclaimed space' line in docker's output: {tail}")

    return DockerPrune(deleted=deleted, untagged=untagged, bytes_reclaimed=reclaimed)
