"""Parsing `registry garbage-collect` stdout, from literal samples and real runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from infraops.registry_gc.gc_output import (
    EligibleManifest,
    GCOutputError,
    GCReport,
    LayerLink,
    gc_format_from_output,
    parse_gc_output,
)
from tests.lab.registry import (
    RegistryLab,
    StandardScenario,
    populate_standard,
    registry_available,
)

# Digests captured from a real 2.8.2 run on the standard scenario.
APP_V2 = "sha256:1c2bd4c9cdee8f5d79050982f14e8664c5a1bb0f25dcf2f88def13ee9138c21a"
APP_BASE = "sha256:88255ee97d7be361a19f66de135a778b61f1d0c18359e4a793f205066bc497ac"
APP_V2_CFG = "sha256:addc1eec9d11aec1823f4ce7fa49b206e4c3a67945822a23e3ec7910346d286b"
MOVING_OLD = "sha256:f83aef6f904d927b26db4676198763202b535d02b66ca31b8ef68068987c16a6"
MULTI_AMD64 = "sha256:06687f0d85a1f0463e872c98135d02924357212ac28f9f936d9c690e7194e99e"
GONE_1 = "sha256:8e0ca94de4aede791c5526e245d98623e63f6d75ae2267ae9b0cf4f67125c919"
GONE_2 = "sha256:c42b148ce843b58704276af4917d6fcc77e1961dbf7557f989ae20b44a73d187"
GONE_3 = "sha256:dc20561e6d60d947c0f379fd7b24f7cd1e4091317e3337e8b8dceabec0c3a8e9"

# 2.8, --delete-untagged: manifest lines sit under their repository line, the
# `marking manifest` lines end with a space, an empty line precedes the summary.
SAMPLE_V2 = f"""\
lab/app
lab/app: marking manifest {APP_V2} \n\
lab/app: marking blob {APP_V2_CFG}
lab/app: marking blob {APP_BASE}
lab/deleted
lab/moving
manifest eligible for deletion: {MOVING_OLD}
lab/multi
manifest eligible for deletion: {MULTI_AMD64}
lab/multi: marking manifest {APP_V2} \n\
lab/multi: marking blob {MULTI_AMD64}

4 blobs marked, 3 blobs and 2 manifests eligible for deletion
blob eligible for deletion: {GONE_2}
blob eligible for deletion: {GONE_3}
blob eligible for deletion: {GONE_1}
"""

# 3.x, --delete-untagged: manifest lines carry {repo digest [all tags of repo]}
# and come after the mark phase; layer links are listed per repository.
SAMPLE_V3 = f"""\
lab/app
lab/app: marking manifest {APP_V2} \n\
lab/app: marking blob {APP_BASE}
lab/digest-only
manifest tags path of repository lab/digest-only does not exist
lab/moving
manifest eligible for deletion: {{lab/moving {MOVING_OLD} [latest]}}

24 blobs marked, 2 blobs and 1 manifests eligible for deletion
blob eligible for deletion: {GONE_1}
blob eligible for deletion: {GONE_2}
lab/moving: layer link eligible for deletion: {GONE_2}
"""


class TestLiteralSamples:
    def test_v2_counts_and_sets(self) -> None:
        """A 2.8 sample gives the summary counts and the itemised digests."""
        report = parse_gc_output(SAMPLE_V2)

        assert (report.blobs_marked, report.blobs_eligible) == (4, 3)
        assert report.manifests_eligible == 2
        assert report.blob_digests == {GONE_1, GONE_2, GONE_3}
        assert report.manifest_digests == {MOVING_OLD, MULTI_AMD64}
        assert report.layer_links == frozenset()
        assert report.output_format == "2.x"

    def test_v2_manifest_lines_take_the_repository_above_them(self) -> None:
        """In 2.8 the repository of an eligible manifest is the line above it."""
        report = parse_gc_output(SAMPLE_V2)

        assert report.manifests == (
            EligibleManifest(digest=MOVING_OLD, repository="lab/moving"),
            EligibleManifest(digest=MULTI_AMD64, repository="lab/multi"),
        )

    def test_v2_repositories_include_those_without_marks(self) -> None:
        """Bare repository lines count, even for a repository with nothing marked."""
        report = parse_gc_output(SAMPLE_V2)

        assert report.repositories == {
            "lab/app",
            "lab/deleted",
            "lab/moving",
            "lab/multi",
        }

    def test_v3_counts_manifests_and_layer_links(self) -> None:
        """A 3.x sample gives manifests with their repository, and layer links."""
        report = parse_gc_output(SAMPLE_V3)

        assert (report.blobs_marked, report.blobs_eligible) == (24, 2)
        assert report.manifests == (
            EligibleManifest(digest=MOVING_OLD, repository="lab/moving"),
        )
        assert report.layer_links == {LayerLink(repository="lab/moving", digest=GONE_2)}
        assert report.repositories_without_tags == {"lab/digest-only"}
        assert report.output_format == "3.x"

    def test_v3_manifest_with_several_tags(self) -> None:
        """The bracket holds every tag of the repository, space separated."""
        line = f"manifest eligible for deletion: {{lab/x {MOVING_OLD} [a b c]}}"
        text = (
            f"{line}\n\n1 blobs marked, 0 blobs and 1 manifests eligible for deletion"
        )

        assert parse_gc_output(text).manifest_digests == {MOVING_OLD}

    def test_blob_line_order_does_not_matter(self) -> None:
        """Go map order shuffles blob lines; the parsed set is the same."""
        head, _, blob_lines = SAMPLE_V2.partition("eligible for deletion\n")
        shuffled = (
            head
            + "eligible for deletion\n"
            + "".join(reversed(blob_lines.splitlines(keepends=True)))
        )

        assert parse_gc_output(shuffled) == parse_gc_output(SAMPLE_V2)

    def test_crlf_and_trailing_spaces_are_tolerated(self) -> None:
        """Output passed through a terminal or Windows tooling still parses."""
        assert parse_gc_output(SAMPLE_V2.replace("\n", " \r\n")) == parse_gc_output(
            SAMPLE_V2
        )

    def test_nothing_eligible(self) -> None:
        """A registry with nothing to delete reports zero and empty sets."""
        report = parse_gc_output(
            "lab/app\n\n3 blobs marked, 0 blobs and 0 manifests eligible for deletion\n"
        )

        assert (report.blobs_eligible, report.manifests_eligible) == (0, 0)
        assert report.blob_digests == frozenset()
        assert report.output_format == "unknown"

    def test_report_is_frozen_and_round_trips(self) -> None:
        """The report can travel as a Temporal payload and cannot be changed."""
        report = parse_gc_output(SAMPLE_V3)

        assert GCReport.model_validate_json(report.model_dump_json()) == report
        with pytest.raises(ValueError, match="frozen"):
            report.blobs_marked = 0  # type: ignore[misc]

    def test_format_helper(self) -> None:
        """The format guess follows the manifest and layer-link line shapes."""
        assert gc_format_from_output(SAMPLE_V2) == "2.x"
        assert gc_format_from_output(SAMPLE_V3) == "3.x"
        assert gc_format_from_output("") == "unknown"


class TestBadOutput:
    def test_missing_summary_names_it_and_quotes_the_tail(self) -> None:
        """Without the summary the error says what is missing and shows the end."""
        text = (
            "lab/digest-only\n"
            f"manifest eligible for deletion: {MOVING_OLD}\n"
            "failed to garbage collect: failed to mark: filesystem: filesystem: "
            "failed to retrieve tags unknown repository name=lab/digest-only"
        )

        with pytest.raises(GCOutputError, match="no summary line") as caught:
            parse_gc_output(text)
        assert "failed to retrieve tags" in str(caught.value)

    def test_empty_output_is_an_error(self) -> None:
        """Output silenced by --quiet (3.x) cannot be trusted for counts."""
        with pytest.raises(GCOutputError, match="--quiet"):
            parse_gc_output("")

    def test_gc_output_error_is_a_value_error(self) -> None:
        """Callers can catch it as a ValueError."""
        assert issubclass(GCOutputError, ValueError)

    def test_truncated_blob_lines_disagree_with_summary(self) -> None:
        """A cut-off blob list is rejected rather than under-reported."""
        truncated = SAMPLE_V2.rsplit("blob eligible", 1)[0]

        with pytest.raises(GCOutputError, match="3 blobs are eligible but 2"):
            parse_gc_output(truncated)

    def test_missing_manifest_lines_disagree_with_summary(self) -> None:
        """The manifest count in the summary must match the itemised lines."""
        text = SAMPLE_V2.replace(f"manifest eligible for deletion: {MOVING_OLD}\n", "")

        with pytest.raises(GCOutputError, match="2 manifests are eligible but 1"):
            parse_gc_output(text)

    def test_repeated_blob_line_is_rejected(self) -> None:
        """A blob digest printed twice means spliced or repeated output."""
        text = SAMPLE_V2 + f"blob eligible for deletion: {GONE_1}\n"

        with pytest.raises(GCOutputError, match="distinct"):
            parse_gc_output(text)


# --- real runs of the 2.8 binary ---------------------------------------------

lab_only = pytest.mark.skipif(
    not registry_available(), reason="docker-registry binary not installed"
)


@pytest.fixture(scope="module")
def standard(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[RegistryLab, StandardScenario]:
    if not registry_available():
        pytest.skip("docker-registry binary not installed")
    lab = RegistryLab(tmp_path_factory.mktemp("gc-golden"))
    with lab:
        scenario = populate_standard(lab)
    return lab, scenario


def fresh_copy(
    standard: tuple[RegistryLab, StandardScenario], root: Path
) -> RegistryLab:
    golden, _ = standard
    return golden.copy_storage_to(root)


@lab_only
@pytest.mark.lab
class TestRealRuns:
    def test_plain_dry_run_matches_the_note(
        self, standard: tuple[RegistryLab, StandardScenario], tmp_path: Path
    ) -> None:
        """Plain GC marks 27 blobs and finds the API-deleted image's 3 blobs."""
        lab, scenario = fresh_copy(standard, tmp_path), standard[1]

        result = lab.run_gc(dry_run=True)
        report = parse_gc_output(result.stdout)

        assert result.returncode == 0
        assert (report.blobs_marked, report.blobs_eligible) == (27, 3)
        assert report.manifests_eligible == 0
        assert report.blob_digests == scenario.blobs_of("deleted:gone")
        assert report.repositories == {
            "lab/app",
            "lab/deleted",
            "lab/moving",
            "lab/multi",
            "lab/multi-oci",
        }

    def test_delete_untagged_dry_run_matches_the_note(
        self, standard: tuple[RegistryLab, StandardScenario], tmp_path: Path
    ) -> None:
        """2.8 -m queues the old tag target and all four multi-arch children."""
        lab, scenario = fresh_copy(standard, tmp_path), standard[1]
        children = ("multi:amd64", "multi:arm64", "multi-oci:amd64", "multi-oci:arm64")

        result = lab.run_gc(dry_run=True, delete_untagged=True)
        report = parse_gc_output(result.stdout)

        child_blobs = scenario.blobs_of(*children) - {
            scenario.digest(key) for key in children
        }
        assert (report.blobs_marked, report.blobs_eligible) == (16, 14)
        assert report.manifests_eligible == 5
        assert report.manifest_digests == {
            scenario.digest(key) for key in ("moving:old", *children)
        }
        assert report.blob_digests == (
            scenario.blobs_of("deleted:gone", "moving:old") | child_blobs
        )
        assert report.output_format == "2.x"

    @pytest.mark.parametrize("delete_untagged", [False, True])
    def test_eligible_blobs_are_exactly_what_disappears(
        self,
        standard: tuple[RegistryLab, StandardScenario],
        tmp_path: Path,
        delete_untagged: bool,
    ) -> None:
        """A real run deletes exactly the blobs the output lists, no more."""
        lab = fresh_copy(standard, tmp_path)
        before = lab.stored_blob_digests()

        result = lab.run_gc(delete_untagged=delete_untagged)
        report = parse_gc_output(result.stdout)

        assert result.returncode == 0
        assert before - lab.stored_blob_digests() == report.blob_digests
        assert len(lab.stored_blob_digests()) == report.blobs_marked

    def test_dry_run_and_real_run_print_the_same_sets(
        self, standard: tuple[RegistryLab, StandardScenario], tmp_path: Path
    ) -> None:
        """Only the disk changes between a dry run and a real run."""
        lab = fresh_copy(standard, tmp_path)

        dry = parse_gc_output(lab.run_gc(dry_run=True, delete_untagged=True).stdout)
        real = parse_gc_output(lab.run_gc(delete_untagged=True).stdout)

        assert dry == real

    def test_standard_scenario_digests_are_reproducible(
        self, standard: tuple[RegistryLab, StandardScenario]
    ) -> None:
        """The pusher's fixed content gives the digests captured in the samples."""
        _, scenario = standard

        assert scenario.digest("app:v2") == APP_V2
        assert scenario.digest("moving:old") == MOVING_OLD
        assert scenario.digest("multi:amd64") == MULTI_AMD64
        assert scenario.blobs_of("deleted:gone") == {GONE_1, GONE_2, GONE_3}

    def test_missing_config_fails_without_summary(self, tmp_path: Path) -> None:
        """A wrong config path exits 1 and the parser refuses its output."""
        lab = RegistryLab(tmp_path)
        lab.config_path.unlink()

        result = lab.run_gc(dry_run=True)

        assert result.returncode == 1
        assert "configuration error" in result.stdout + result.stderr
        with pytest.raises(GCOutputError):
            parse_gc_output(result.stdout)

    def test_empty_storage_fails_without_summary(self, tmp_path: Path) -> None:
        """An empty or unmounted storage root fails loudly, not with zero counts."""
        lab = RegistryLab(tmp_path)

        result = lab.run_gc(dry_run=True)

        assert result.returncode == 1
        assert "Path not found" in result.stdout + result.stderr
        with pytest.raises(GCOutputError):
            parse_gc_output(result.stdout)
