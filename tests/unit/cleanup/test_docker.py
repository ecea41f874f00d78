"""Reading what `docker image prune` printed."""

from __future__ import annotations

import pytest

from infraops.cleanup.docker import parse_prune

OUTPUT = """Deleted Images:
untagged: example/app@sha256:8f1b2c
deleted: sha256:1111111111111111111111111111111111111111111111111111111111111111
deleted: sha256:2222222222222222222222222222222222222222222222222222222222222222

Total reclaimed space: 12.35MB
"""


class TestParsePrune:
    def test_lists_deleted_and_untagged_and_total(self) -> None:
        """Every deleted id, untagged reference and the total are kept."""
        result = parse_prune(OUTPUT)

        assert len(result.deleted) == 2
        assert result.untagged == ["example/app@sha256:8f1b2c"]
        assert result.bytes_reclaimed == 12_350_000

    def test_nothing_to_prune(self) -> None:
        """Docker prints only a zero total when nothing is dangling."""
        result = parse_prune("Total reclaimed space: 0B\n")

        assert result.deleted == []
        assert result.bytes_reclaimed == 0

    def test_unexpected_output_is_an_error(self) -> None:
        """Output without the total line is not taken as success."""
        with pytest.raises(ValueError, match="Total reclaimed space"):
            parse_prune("Error response from daemon: a prune operation is running")
