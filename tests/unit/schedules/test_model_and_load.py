"""Declarations from JSON files and from Terraform HCL."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from infraops.schedules.load import load_directory, load_terraform
from infraops.schedules.model import (
    Declaration,
    DeclarationError,
    format_duration,
    parse_duration,
)

CLEANUP = {
    "id": "cleanup-daily",
    "workflow": "Cleanup",
    "task_queue": "cleanup-task-queue",
    "cron": "0 5 * * *",
    "input": {"dry_run": False},
}


def write(directory: Path, document: dict[str, Any], name: str | None = None) -> Path:
    path = directory / f"{name or document['id']}.json"
    path.write_text(json.dumps(document))
    return path


class TestModel:
    def test_defaults_are_the_safe_ones(self) -> None:
        declaration = Declaration.model_validate(CLEANUP)

        assert declaration.cron == ("0 5 * * *",)
        assert declaration.time_zone == "UTC"
        assert declaration.overlap_policy == "skip"
        assert declaration.catchup_window == timedelta(hours=1)
        assert not declaration.paused

    @pytest.mark.parametrize(
        ("field", "value", "says"),
        [
            ("cron", "0 5 * *", "expected 5 fields"),
            ("time_zone", "Mars/Olympus", "unknown time zone"),
            ("overlap_policy", "never", "Input should be 'skip'"),
            ("catchup_window", "5s", "at least 10s"),
            ("catchup_window", "a day", "not a duration"),
            ("id", "Backup Daily", "lower-case"),
            ("cronn", "0 5 * * *", "Extra inputs are not permitted"),
            ("paused", "yes", "valid boolean"),
            ("input", None, "use {} for none"),
        ],
    )
    def test_invalid_fields_are_named(self, field: str, value: str, says: str) -> None:
        with pytest.raises(ValueError, match=field) as raised:
            Declaration.model_validate(CLEANUP | {field: value})
        assert says in str(raised.value)

    def test_durations_round_trip(self) -> None:
        assert parse_duration("1h30m") == timedelta(minutes=90)
        assert format_duration(timedelta(minutes=90)) == "1h30m"
        assert format_duration(parse_duration("6h")) == "6h"

    def test_utc_aliases_are_utc(self) -> None:
        assert (
            Declaration.model_validate(CLEANUP | {"time_zone": "Etc/UTC"}).time_zone
            == "UTC"
        )


class TestJsonDirectory:
    def test_one_file_per_schedule(self, tmp_path: Path) -> None:
        write(tmp_path, CLEANUP)
        write(tmp_path, CLEANUP | {"id": "cleanup-weekly", "cron": "@weekly"})
        (tmp_path / "README.md").write_text("ignored")

        found = load_directory(tmp_path)

        assert [d.id for d in found] == ["cleanup-daily", "cleanup-weekly"]
        assert found.sources["cleanup-daily"].endswith("cleanup-daily.json")

    def test_every_problem_is_reported_with_its_file(self, tmp_path: Path) -> None:
        write(tmp_path, CLEANUP, name="cleanup")
        (tmp_path / "broken.json").write_text("{")
        write(tmp_path, CLEANUP | {"id": "ok", "time_zone": "Nowhere"})

        with pytest.raises(DeclarationError) as raised:
            load_directory(tmp_path)

        text = "\n".join(raised.value.problems)
        assert "cleanup.json: its id must be the file's name" in text
        assert "broken.json: not valid JSON" in text
        assert "ok.json: time_zone" in text

    def test_the_repository_declarations_parse(self) -> None:
        found = load_directory(Path(__file__).resolve().parents[3] / "schedules")

        assert {d.id for d in found} == {
            "backup-daily",
            "trivy-daily",
            "cleanup-daily",
            "registry-gc-weekly",
        }
        assert all(d.overlap_policy == "skip" for d in found)


HCL = """
locals {
  schedules = {
    "cleanup-daily" = {
      workflow   = "Cleanup"
      task_queue = "cleanup-task-queue"
      cron       = "0 5 * * *"
      input      = { dry_run = false, grace_days = 7 }
    }
  }
}

resource "temporal_schedule" "weekly" {
  schedule_id    = "cleanup-weekly"
  workflow       = "Cleanup"
  task_queue     = "cleanup-task-queue"
  cron           = ["0 6 * * 0"]
  input          = jsonencode({ docker_prune = true })
  catchup_window = "2h"
  paused         = true
  note           = "weekly, with $${docker} prune"
}

resource "temporal_schedule" "from_json" {
  id    = "from-json"
  workflow   = "Cleanup"
  task_queue = "cleanup-task-queue"
  cron       = "@daily"
  input      = jsondecode(file("${path.module}/input.json")).input
}

resource "null_resource" "unrelated" {}
"""


class TestTerraform:
    def test_the_documented_shapes(self, tmp_path: Path) -> None:
        (tmp_path / "main.tf").write_text(HCL)
        (tmp_path / "input.json").write_text('{"input": {"nodes": ["web-1"]}}')

        found = load_terraform(tmp_path)

        daily, weekly, from_json = (
            found.by_id["cleanup-daily"],
            found.by_id["cleanup-weekly"],
            found.by_id["from-json"],
        )
        assert daily.input == {"dry_run": False, "grace_days": 7}
        assert weekly.input == {"docker_prune": True}
        assert weekly.paused and weekly.catchup_window == timedelta(hours=2)
        assert weekly.note == "weekly, with ${docker} prune"
        assert from_json.input == {"nodes": ["web-1"]}

    @pytest.mark.parametrize(
        ("text", "name"),
        [
            (
                'schedules = { "a" = { workflow = "Cleanup", task_queue = "q", cron = "@daily" } }',
                "x.tfvars",
            ),
            (
                'inputs = { schedules = { "a" = { workflow = "Cleanup", task_queue = "q", cron = "@daily" } } }',
                "terragrunt.hcl",
            ),
            (
                'variable "schedules" {\n default = { a = { workflow = "Cleanup", task_queue = "q", cron = "@daily" } }\n}',
                "variables.tf",
            ),
        ],
    )
    def test_maps_keyed_by_id(self, tmp_path: Path, text: str, name: str) -> None:
        (tmp_path / name).write_text(text + "\n")

        assert list(load_terraform(tmp_path / name).by_id) == ["a"]

    @pytest.mark.parametrize(
        ("body", "says"),
        [
            ("cron = var.cron", "expression is not evaluated: var.cron"),
            ('cron = "@daily"\n for_each = local.x', "for_each is not evaluated"),
            ('cron = "0 ${local.hour} * * *"', "interpolation is not evaluated"),
        ],
    )
    def test_unevaluated_expressions_are_errors(
        self, tmp_path: Path, body: str, says: str
    ) -> None:
        (tmp_path / "main.tf").write_text(
            'resource "temporal_schedule" "x" {\n schedule_id = "x"\n'
            f' workflow = "Cleanup"\n task_queue = "q"\n {body}\n}}\n'
        )

        with pytest.raises(DeclarationError) as raised:
            load_terraform(tmp_path)

        assert 'main.tf (resource "temporal_schedule" "x")' in raised.value.problems[0]
        assert says in raised.value.problems[0]

    def test_duplicate_ids_name_both_places(self, tmp_path: Path) -> None:
        entry = '"a" = { workflow = "Cleanup", task_queue = "q", cron = "@daily" }'
        (tmp_path / "a.tfvars").write_text(f"schedules = {{ {entry} }}\n")
        (tmp_path / "b.tfvars").write_text(f"schedules = {{ {entry} }}\n")

        with pytest.raises(DeclarationError, match="also declared in"):
            load_terraform(tmp_path)

    def test_a_file_without_schedules_is_an_error(self, tmp_path: Path) -> None:
        (tmp_path / "main.tf").write_text('resource "null_resource" "x" {}\n')

        with pytest.raises(DeclarationError, match="declares no schedules"):
            load_terraform(tmp_path)

    def test_hidden_directories_are_skipped(self, tmp_path: Path) -> None:
        (tmp_path / "main.tf").write_text(HCL)
        (tmp_path / "input.json").write_text('{"input": {}}')
        cache = tmp_path / ".terragrunt-cache" / "x"
        cache.mkdir(parents=True)
        (cache / "main.tf").write_text(HCL)

        assert len(load_terraform(tmp_path)) == 3


class TestUnreadableInput:
    def test_a_declaration_that_is_not_utf8_is_named(self, tmp_path: Path) -> None:
        """A binary file among the declarations is a problem named by its path."""
        (tmp_path / "bad.json").write_bytes(b"\xff\xfe")

        with pytest.raises(DeclarationError, match=r"bad\.json: not UTF-8"):
            load_directory(tmp_path)

    def test_an_hcl_key_with_a_bad_escape_is_named(self, tmp_path: Path) -> None:
        """A schedule id HCL cannot unescape is an error, not a traceback."""
        (tmp_path / "main.tf").write_text(
            'locals {\n  schedules = {\n    "a\\qb" = { workflow = "Cleanup" }\n  }\n}\n'
        )

        with pytest.raises(DeclarationError, match="cannot read the schedule id"):
            load_terraform(tmp_path)
