from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from infraops.backup.models import BackupConfig, Target
from infraops.backup.naming import (
    database_of,
    dump_file_name,
    is_run_id,
    run_id,
    run_started,
)
from infraops.backup.pgtools import conninfo

NAMES = [
    "postgres",
    "Weird db",
    "weird db",
    "WEIRD DB",
    "ünïcödé",
    "日本語",
    'quo"ted',
    "it's",
    "a=b",
    "postgresql://x",
    "../etc",
    "/abs",
    "back\\slash",
    "%41",
    "A",
    "new\nline",
    "x" * 63,
]


def test_file_names_are_reversible_and_collision_free() -> None:
    files = [dump_file_name(name) for name in NAMES]
    assert [database_of(f) for f in files] == NAMES
    assert len({f.lower() for f in files}) == len(NAMES)  # case-insensitive FS too
    for f in files:
        assert "/" not in f and "\n" not in f and len(f.encode()) < 255
        assert f.startswith("db-") and f.endswith(".dump")


@pytest.mark.parametrize("bad", ["db-.dump", "db-A.dump", "db-%zz.dump", "x.dump"])
def test_foreign_file_names_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not a dump file name"):
        database_of(bad)


def test_run_ids_are_utc_and_parse_back() -> None:
    local = datetime(2026, 12, 3, 2, 30, tzinfo=timezone(timedelta(hours=1)))
    rid = run_id(local, "ABCDEF0123456789")
    assert rid == "20261203T013000Z-abcdef01"
    assert is_run_id(rid) and not is_run_id(rid + "x")
    assert run_started(rid) == datetime(2026, 12, 3, 1, 30, tzinfo=UTC)


def test_conninfo_quotes_any_name() -> None:
    assert conninfo("a=b") == "dbname='a=b'"
    assert conninfo("it's \\ x") == "dbname='it\\'s \\\\ x'"


def test_config_defaults_and_validation() -> None:
    config = BackupConfig()
    assert config.targets == [Target.NOMAD, Target.CONSUL, Target.POSTGRES]
    assert (config.local_retention_days, config.s3_retention_days) == (7, 30)
    assert config.min_good_runs == 2 and config.dump_concurrency is None
    for bad in (
        {"targets": []},
        {"min_good_runs": 0},
        {"targets": ["vault"]},
        {"databases": [""]},
        {"unknown": 1},
    ):
        with pytest.raises(ValidationError):
            BackupConfig.model_validate(bad)
