"""Parse the stdout of `registry garbage-collect` (distribution 2.8 and 3.x).

Both versions print, in order: the mark phase (a bare repository name, then
`<repo>: marking manifest <digest> ` with a trailing space and
`<repo>: marking blob <digest>` lines), an empty line, the summary
`N blobs marked, N blobs and N manifests eligible for deletion`, and one
`blob eligible for deletion: <digest>` line per swept blob, in random order.

They differ in how an untagged manifest queued by `--delete-untagged` is shown:

* 2.8: `manifest eligible for deletion: sha256:…`, printed during the mark phase
  right under its repository name;
* 3.x: `manifest eligible for deletion: {<repo> <digest> [<all tags of repo>]}`,
  printed after the mark phase.

3.x also prints `<repo>: layer link eligible for deletion: <digest>` and
`manifest tags path of repository <repo> does not exist`.

The summary is the source of truth for counts: `marking blob` lines repeat
for shared layers. Only stdout is parsed; stderr carries logrus noise.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict

GCFormat = Literal["2.x", "3.x", "unknown"]

_DIGEST = r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+"
# A repository name: path components of lowercase alphanumerics and separators.
_REPO_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPO = rf"{_REPO_PART}(?:/{_REPO_PART})*"

_SUMMARY = re.compile(
    r"^(\d+) blobs marked, (\d+) blobs and (\d+) manifests eligible for deletion$"
)
_BLOB_ELIGIBLE = re.compile(rf"^blob eligible for deletion: ({_DIGEST})$")
_MANIFEST_ELIGIBLE_V2 = re.compile(rf"^manifest eligible for deletion: ({_DIGEST})$")
_MANIFEST_ELIGIBLE_V3 = re.compile(
    rf"^manifest eligible for deletion: \{{({_REPO}) ({_DIGEST}) \[[^\]]*\]\}}$"
)
_LAYER_LINK = re.compile(rf"^({_REPO}): layer link eligible for deletion: ({_DIGEST})$")
_MARKING = re.compile(rf"^({_REPO}): marking (?:manifest|blob) {_DIGEST}$")
_NO_TAGS_PATH = re.compile(
    rf"^manifest tags path of repository ({_REPO}) does not exist$"
)
_REPO_LINE = re.compile(rf"^{_REPO}$")

_TAIL_LINES = 5


class GCOutputError(ValueError):
    """The garbage-collect output cannot be trusted for counts.

    Raised when the summary line is missing (the run failed, was cut short, or
    ran with `--quiet`) or when the itemised lines disagree with the summary.
    """


class EligibleManifest(BaseModel):
    """An untagged manifest queued for deletion by `--delete-untagged`."""

    model_config = ConfigDict(frozen=True)

    digest: str
    repository: str | None  # 2.8: the repository line it was printed under


class LayerLink(BaseModel):
    """A repository `_layers/<digest>/link` queued for deletion (3.x only)."""

    model_config = ConfigDict(frozen=True)

    repository: str
    digest: str


class GCReport(BaseModel):
    """What one garbage-collect run marked and found eligible for deletion."""

    model_config = ConfigDict(frozen=True)

    blobs_marked: int
    blobs_eligible: int
    manifests_eligible: int
    blob_digests: frozenset[str]
    manifests: tuple[EligibleManifest, ...]
    layer_links: frozenset[LayerLink]
    repositories: frozenset[str]
    repositories_without_tags: frozenset[str]
    output_format: GCFormat

    @property
    def manifest_digests(self) -> frozenset[str]:
        return frozenset(manifest.digest for manifest in self.manifests)


class _Collector:
    """Line-by-line state while parsing; turned into a `GCReport` at the end."""

    def __init__(self) -> None:
        self.summary: tuple[int, int, int] | None = None
        self.blob_digests: set[str] = set()
        self.blob_lines = 0
        self.manifests: list[EligibleManifest] = []
        self.layer_links: set[LayerLink] = set()
        self.repositories: set[str] = set()
        self.without_tags: set[str] = set()
        self.current_repository: str | None = None
        self.seen_v2 = False
        self.seen_v3 = False

    def feed(self, line: str) -> None:
        if match := _SUMMARY.match(line):
            self.summary = (int(match[1]), int(match[2]), int(match[3]))
        elif match := _BLOB_ELIGIBLE.match(line):
            self.blob_digests.add(match[1])
            self.blob_lines += 1
        elif match := _MANIFEST_ELIGIBLE_V2.match(line):
            self.seen_v2 = True
            self.manifests.append(
                EligibleManifest(digest=match[1], repository=self.current_repository)
            )
        elif match := _MANIFEST_ELIGIBLE_V3.match(line):
            self.seen_v3 = True
            self._see_repository(match[1])
            self.manifests.append(
                EligibleManifest(digest=match[2], repository=match[1])
            )
        elif match := _LAYER_LINK.match(line):
            self.seen_v3 = True
            self._see_repository(match[1])
            self.layer_links.add(LayerLink(repository=match[1], digest=match[2]))
        elif match := _NO_TAGS_PATH.match(line):
            self.seen_v3 = True
            self._see_repository(match[1])
            self.without_tags.add(match[1])
        elif match := _MARKING.match(line):
            self._see_repository(match[1])
        elif _REPO_LINE.match(line):
            self._see_repository(line)
            self.current_repository = line

    def _see_repository(self, name: str) -> None:
        self.repositories.add(name)

    def output_format(self) -> GCFormat:
        if self.seen_v3:
            return "3.x"
        if self.seen_v2:
            return "2.x"
        return "unknown"


def parse_gc_output(stdout: str) -> GCReport:
    """Parse the stdout of one garbage-collect run (dry or real).

    Raises:
        GCOutputError: no summary line, or the itemised blob or manifest lines
            disagree with the counts in the summary.
    """
    collector = _Collector()
    for raw_line in stdout.splitlines():
        # `marking manifest` lines end with a space; tolerate CRLF as well.
        collector.feed(raw_line.rstrip())

    if collector.summary is None:
        raise GCOutputError(
            "garbage-collect output has no summary line "
            "('N blobs marked, N blobs and N manifests eligible for deletion'); "
            f"the run failed, was cut short or ran with --quiet. "
            f"Output ends with: {_tail(stdout)!r}"
        )
    marked, blobs_eligible, manifests_eligible = collector.summary
    _check_counts(collector, blobs_eligible, manifests_eligible, stdout)

    return GCReport(
        blobs_marked=marked,
        blobs_eligible=blobs_eligible,
        manifests_eligible=manifests_eligible,
        blob_digests=frozenset(collector.blob_digests),
        manifests=tuple(collector.manifests),
        layer_links=frozenset(collector.layer_links),
        repositories=frozenset(collector.repositories),
        repositories_without_tags=frozenset(collector.without_tags),
        output_format=collector.output_format(),
    )


def gc_format_from_output(stdout: str) -> GCFormat:
    """Guess the distribution major version from garbage-collect stdout.

    Only output with untagged manifests, layer links or digest-only
    repositories tells the versions apart; anything else is "unknown".
    """
    collector = _Collector()
    for line in stdout.splitlines():
        collector.feed(line.rstrip())
    return collector.output_format()


def _check_counts(
    collector: _Collector, blobs_eligible: int, manifests_eligible: int, stdout: str
) -> None:
    # A digest printed twice would mean the output was spliced or repeated.
    if collector.blob_lines != len(collector.blob_digests):
        raise GCOutputError(
            f"garbage-collect output lists {collector.blob_lines} blob lines but "
            f"only {len(collector.blob_digests)} distinct digests. "
            f"Output ends with: {_tail(stdout)!r}"
        )
    if len(collector.blob_digests) != blobs_eligible:
        raise GCOutputError(
            f"garbage-collect summary says {blobs_eligible} blobs are eligible but "
            f"{len(collector.blob_digests)} 'blob eligible for deletion' lines "
            f"were found. Output ends with: {_tail(stdout)!r}"
        )
    if len(collector.manifests) != manifests_eligible:
        raise GCOutputError(
            f"garbage-collect summary says {manifests_eligible} manifests are "
            f"eligible but {len(collector.manifests)} 'manifest eligible for "
            f"deletion' lines were found. Output ends with: {_tail(stdout)!r}"
        )


def _tail(text: str) -> str:
    lines = text.rstrip("\n").splitlines()
    return "\n".join(lines[-_TAIL_LINES:])
