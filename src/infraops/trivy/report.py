"""Reading a Trivy JSON report (SchemaVersion 2) into rows to store.

Tolerant where Trivy is loose: a UTF-8 byte-order mark, CRLF line ends, and
keys that are absent or null when empty. Strict where a report is not one:
no JSON, a top-level list (the pre-0.20 schema), or no `SchemaVersion`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

KNOWN_SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN")


class ReportError(ValueError):
    """The output is not a usable Trivy report."""


@dataclass(frozen=True)
class Finding:
    target: str
    pkg_key: str
    pkg_path: str
    vulnerability_id: str
    pkg_name: str
    installed_version: str
    fixed_version: str | None
    status: str | None
    severity: str
    title: str | None
    primary_url: str | None
    cvss_score: float | None
    published_at: datetime | None
    result_class: str | None
    result_type: str | None

    @property
    def key(self) -> tuple[str, str, str, str]:
        """The natural key within one image."""
        return (self.target, self.pkg_key, self.pkg_path, self.vulnerability_id)


@dataclass(frozen=True)
class Report:
    artifact_name: str | None
    image_id: str | None
    digest: str | None
    repo_digests: list[str]
    os_family: str | None
    os_name: str | None
    eosl: bool
    db_version: str | None
    findings: list[Finding] = field(default_factory=list)
    duplicates: int = 0

    def by_severity(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for finding in self.findings:
            counts[finding.severity] = counts.get(finding.severity, 0) + 1
        return counts


def parse_report(data: bytes) -> Report:
    """Parse Trivy's `--format json` output, or raise ReportError."""
    if not data.strip():
        raise ReportError("Trivy wrote no report (empty output)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ReportError(f"report is not UTF-8 ({error.reason})") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ReportError(
            f"report is not valid JSON (line {error.lineno}, column {error.colno}: "
            f"{error.msg})"
        ) from None
    if isinstance(document, list):
        raise ReportError(
            "report is a top-level list (the pre-0.20 schema); expected SchemaVersion 2"
        )
    if not isinstance(document, dict):
        raise ReportError("report is not a JSON object")
    version = document.get("SchemaVersion")
    if version is None:
        raise ReportError("report lacks SchemaVersion")
    if version != 2:
        raise ReportError(f"unsupported SchemaVersion {version!r}; expected 2")
    metadata = _object(document.get("Metadata"), "Metadata")
    os_info = _object(metadata.get("OS"), "Metadata.OS")
    repo_digests = [d for d in _list(metadata.get("RepoDigests")) if isinstance(d, str)]
    findings: dict[tuple[str, str, str, str], Finding] = {}
    duplicates = 0
    for index, result in enumerate(_list(document.get("Results"))):
        result = _object(result, f"Results[{index}]")
        for number, vuln in enumerate(_list(result.get("Vulnerabilities"))):
            finding = _finding(
                result, _object(vuln, f"Results[{index}].Vulnerabilities[{number}]")
            )
            if finding.key in findings:
                duplicates += 1
                continue
            findings[finding.key] = finding

    return Report(
        artifact_name=_str(document.get("ArtifactName")),
        image_id=_str(metadata.get("ImageID")),
        digest=_digest_of(repo_digests),
        repo_digests=repo_digests,
        os_family=_str(os_info.get("Family")),
        os_name=_str(os_info.get("Name")),
        eosl=bool(os_info.get("EOSL", False)),
        db_version=_db_version(document),
        findings=list(findings.values()),
        duplicates=duplicates,
    )


def _finding(result: dict[str, Any], vuln: dict[str, Any]) -> Finding:
    vuln_id = _str(vuln.get("VulnerabilityID"))
    if not vuln_id:
        raise ReportError("a vulnerability lacks VulnerabilityID")
    name = _str(vuln.get("PkgName")) or ""
    installed = _str(vuln.get("InstalledVersion")) or ""
    pkg_key = _str(vuln.get("PkgID")) or f"{name}@{installed}"
    severity = (_str(vuln.get("Severity")) or "UNKNOWN").upper()
    if severity not in KNOWN_SEVERITIES:
        severity = "UNKNOWN"

    return Finding(
        target=_str(result.get("Target")) or "",
        pkg_key=pkg_key,
        pkg_path=_str(vuln.get("PkgPath")) or "",
        vulnerability_id=vuln_id,
        pkg_name=name,
        installed_version=installed,
        fixed_version=_str(vuln.get("FixedVersion")),
        status=_str(vuln.get("Status")),
        severity=severity,
        title=_str(vuln.get("Title")),
        primary_url=_str(vuln.get("PrimaryURL")),
        cvss_score=_best_score(vuln.get("CVSS")),
        published_at=_timestamp(vuln.get("PublishedDate")),
        result_class=_str(result.get("Class")),
        result_type=_str(result.get("Type")),
    )


def _object(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ReportError(f"{where} is not a JSON object")
    return value


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ReportError("expected a JSON list")
    return value


def _str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def _digest_of(repo_digests: list[str]) -> str | None:
    for entry in repo_digests:
        _, at, digest = entry.partition("@")
        if at and digest:
            return digest
    return None


def _best_score(cvss: Any) -> float | None:
    if not isinstance(cvss, dict):
        return None
    scores = []
    for source in cvss.values():
        if isinstance(source, dict):
            for key in ("V40Score", "V3Score", "V2Score"):
                score = source.get(key)
                if isinstance(score, int | float):
                    scores.append(float(score))
                    break
    return max(scores) if scores else None


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _db_version(document: dict[str, Any]) -> str | None:
    trivy = document.get("Trivy")
    if not isinstance(trivy, dict):
        return None
    server = trivy.get("Server")
    if not isinstance(server, dict):
        return None
    db = server.get("VulnerabilityDB")
    if not isinstance(db, dict):
        return None
    return db_version_label(db)


def db_version_label(db: dict[str, Any]) -> str | None:
    """A comparable label for a vulnerability DB: schema version and update."""
    updated = db.get("UpdatedAt")
    if not updated:
        return None
    return f"v{db.get('Version', '?')}@{updated}"
