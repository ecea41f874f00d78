"""Parsing Trivy reports: tolerant of Trivy's looseness, strict about non-reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infraops.trivy.report import ReportError, parse_report
from tests.unit.trivy.conftest import OWN, own_reports, shared_reports

# Distinct natural keys per real report (checked by hand against the files).
SHARED_COUNTS = {
    "alpine-39-duplicate-cves.json": 6,
    "alpine-39-no-results.json": 0,
    "alpine-java-unknown-severity.json": 67,
    "alpine-latest-docs-example.json": 2,
    "debian-stretch-eol-unfixed.json": 5,
    "debian12-python-bom-crlf.json": 34,
    "sle-micro-no-vulnerabilities.json": 0,
    "spring4shell-jre11-three-targets.json": 1,
    "ubi7-os-and-python.json": 2,
    "ubuntu-java-large.json": 144,
}


@pytest.mark.parametrize("path", own_reports(), ids=lambda p: p.name)
def test_own_fixtures_parse(path: Path) -> None:
    raw = json.loads(path.read_text())
    expected = sum(
        len(r.get("Vulnerabilities") or []) for r in raw.get("Results") or []
    )

    report = parse_report(path.read_bytes())

    assert len(report.findings) == expected
    assert report.db_version == "v2@2026-12-03T00:00:00Z"
    assert report.digest and report.digest.startswith("sha256:")


def test_same_cve_on_two_packages_and_two_paths_are_distinct() -> None:
    report = parse_report((OWN / "app-1.4-debian-java.json").read_bytes())

    cve = [f for f in report.findings if f.vulnerability_id == "CVE-2024-5535"]
    spring = [f for f in report.findings if f.vulnerability_id == "CVE-2022-22965"]
    assert {f.pkg_name for f in cve} == {"libssl3", "openssl"}
    assert {f.pkg_path for f in spring} == {
        "app/lib/spring-beans-5.3.15.jar",
        "app/plugins/spring-beans-5.3.15.jar",
    }
    unknown = next(f for f in report.findings if f.severity == "UNKNOWN")
    assert unknown.cvss_score is None and unknown.title is None


@pytest.mark.parametrize("name", sorted(SHARED_COUNTS))
def test_shared_real_reports(shared_dir: Path, name: str) -> None:
    report = parse_report((shared_dir / name).read_bytes())

    assert len(report.findings) == SHARED_COUNTS[name]
    assert len({f.key for f in report.findings}) == len(report.findings)


def test_every_shared_report_is_covered(shared_dir: Path) -> None:
    assert {p.name for p in shared_reports()} == set(SHARED_COUNTS)


def test_bom_and_crlf(shared_dir: Path) -> None:
    data = (shared_dir / "debian12-python-bom-crlf.json").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and b"\r\n" in data

    report = parse_report(data)

    assert report.by_severity() == {"HIGH": 28, "CRITICAL": 6}
    assert all(f.fixed_version is None for f in report.findings)


def test_large_report_keys(shared_dir: Path) -> None:
    report = parse_report((shared_dir / "ubuntu-java-large.json").read_bytes())

    assert report.by_severity() == {"LOW": 70, "MEDIUM": 37, "HIGH": 33, "CRITICAL": 4}
    assert report.digest is None and report.image_id  # scanned by image ID
    assert sum(f.fixed_version is None for f in report.findings) == 79


def test_unknown_severity_without_cvss(shared_dir: Path) -> None:
    report = parse_report(
        (shared_dir / "alpine-java-unknown-severity.json").read_bytes()
    )

    unknown = [f for f in report.findings if f.severity == "UNKNOWN"]
    assert len(unknown) == 2 and all(f.cvss_score is None for f in unknown)
    assert report.eosl


def test_null_and_missing_keys_alike() -> None:
    document = {
        "SchemaVersion": 2,
        "Metadata": None,
        "Results": [
            {"Target": "a", "Vulnerabilities": None},
            {"Target": "b"},
            {"Target": "", "Class": "custom"},
        ],
    }

    report = parse_report(json.dumps(document).encode())

    assert report.findings == [] and report.image_id is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"   \r\n", "empty"),
        (b'{"SchemaVersion": 2, "Results": [', "not valid JSON"),
        (b'[{"Target": "x", "Vulnerabilities": null}]', "top-level list"),
        (b'{"Results": []}', "lacks SchemaVersion"),
        (b'{"SchemaVersion": 3}', "unsupported SchemaVersion"),
        (b'"just a string"', "not a JSON object"),
        (b"\xff\xfe{}", "not UTF-8"),
        (
            b'{"SchemaVersion": 2, "Results": [{"Vulnerabilities": [{}]}]}',
            "lacks VulnerabilityID",
        ),
        (b'{"SchemaVersion": 2, "Results": {"a": 1}}', "expected a JSON list"),
    ],
)
def test_not_a_report(data: bytes, message: str) -> None:
    with pytest.raises(ReportError, match=message):
        parse_report(data)


def test_truncated_real_report(shared_dir: Path) -> None:
    data = (shared_dir / "ubuntu-java-large.json").read_bytes()

    with pytest.raises(ReportError, match="not valid JSON"):
        parse_report(data[: len(data) // 2])
