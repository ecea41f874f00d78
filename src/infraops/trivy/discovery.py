"""From Nomad allocations to the set of images to scan (pure, no I/O).

An allocation counts when it is running and meant to run. Its task group is
looked up in the allocation's own `Job` (the version it runs, which differs
from the current spec during a rollout); docker and podman tasks contribute
their `image`. References are normalised and deduplicated; each image keeps
every job, group and task that runs it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from infraops.trivy.models import Discovery, Image, ImageSkip, ImageUse, SkipReason
from infraops.trivy.references import (
    InvalidReference,
    has_unresolved_variable,
    normalise,
)

IMAGE_DRIVERS = frozenset({"docker", "podman"})
_OTHER_TRANSPORTS = ("oci-archive:", "docker-archive:", "containers-storage:", "oci:")


def collect_images(
    allocations: Iterable[dict[str, Any]], namespaces: Sequence[str] = ()
) -> Discovery:
    wanted = set(namespaces)
    images: dict[str, dict[str, Any]] = {}
    skipped: dict[tuple[str, str], ImageSkip] = {}
    seen_allocs = 0
    for alloc in allocations:
        if (
            alloc.get("ClientStatus") != "running"
            or alloc.get("DesiredStatus") != "run"
        ):
            continue
        namespace = alloc.get("Namespace") or "default"
        if wanted and namespace not in wanted:
            continue
        seen_allocs += 1
        for use in _uses(alloc, namespace):
            _add(use, images, skipped)
    found = [
        Image(
            reference=key,
            repository=entry["repository"],
            tag=entry["tag"],
            digest=entry["digest"],
            uses=sorted(set(entry["uses"]), key=_use_order),
        )
        for key, entry in sorted(images.items())
    ]

    return Discovery(
        images=found,
        skipped=sorted(skipped.values(), key=lambda s: (s.reference, s.reason)),
        allocations=seen_allocs,
    )


def _uses(alloc: dict[str, Any], namespace: str) -> list[ImageUse]:
    job = alloc.get("Job") or {}
    group_name = alloc.get("TaskGroup")
    groups = [g for g in job.get("TaskGroups") or [] if g.get("Name") == group_name]
    uses = []
    for group in groups:
        for task in group.get("Tasks") or []:
            driver = task.get("Driver") or ""
            if driver not in IMAGE_DRIVERS:
                continue
            config = task.get("Config") or {}
            image = config.get("image")
            uses.append(
                ImageUse(
                    namespace=namespace,
                    job=alloc.get("JobID") or job.get("ID") or "",
                    group=group_name or "",
                    task=task.get("Name") or "",
                    driver=driver,
                    written=image if isinstance(image, str) else "",
                )
            )
    return uses


def _add(
    use: ImageUse,
    images: dict[str, dict[str, Any]],
    skipped: dict[tuple[str, str], ImageSkip],
) -> None:
    written = use.written
    reason, detail = None, ""
    if not written.strip():
        reason, detail = SkipReason.NO_IMAGE, "the task config has no image"
    elif has_unresolved_variable(written):
        reason = SkipReason.UNRESOLVED
        detail = "the reference holds a ${...} that Nomad only resolves at run time"
    elif written.startswith(_OTHER_TRANSPORTS):
        reason, detail = SkipReason.NOT_REGISTRY, "not pulled from a registry"
    if reason is None:
        try:
            ref = normalise(written)
        except InvalidReference as error:
            reason, detail = SkipReason.INVALID, str(error)
        else:
            entry = images.setdefault(
                ref.canonical,
                {
                    "repository": ref.repository,
                    "tag": ref.tag,
                    "digest": ref.digest,
                    "uses": [],
                },
            )
            entry["uses"].append(use)
            return
    key = (written or f"{use.job}/{use.group}/{use.task}", reason.value)
    previous = skipped.get(key)
    uses = [*(previous.uses if previous else []), use]
    skipped[key] = ImageSkip(
        reference=key[0],
        reason=reason,
        detail=detail,
        uses=sorted(uses, key=_use_order),
    )


def _use_order(use: ImageUse) -> tuple[str, str, str, str]:
    return (use.namespace, use.job, use.group, use.task)
