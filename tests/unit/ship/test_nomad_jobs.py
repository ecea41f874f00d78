"""The Nomad jobs in nomad/ agree with the code they deploy."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import hcl2
import pytest

from infraops.config import (
    Settings,
    TelemetrySettings,
    TemporalSettings,
    WorkerSettings,
    env_names,
)
from infraops.worker.roles import ROLES

ROOT = Path(__file__).resolve().parents[3]
JOBS = {
    "cleanup-worker": "cleanup",
    "trivy-scan-worker": "trivy",
    "backup-worker": "backup",
}
COMMON: list[type[Settings]] = [TemporalSettings, TelemetrySettings, WorkerSettings]


def unquote(value: Any) -> Any:
    """python-hcl2 keeps the quotes of string literals; drop them."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    if isinstance(value, list):
        return [unquote(item) for item in value]
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items()}
    return value


def load_job(name: str) -> dict[str, Any]:
    with (ROOT / "nomad" / f"{name}.nomad.hcl").open() as handle:
        document = unquote(hcl2.load(handle))
    (job,) = document["job"]
    return job[name]


def task_of(job: dict[str, Any]) -> dict[str, Any]:
    (group,) = job["group"]
    (body,) = group.values()
    (task,) = body["task"]
    return next(iter(task.values()))


def group_of(job: dict[str, Any]) -> dict[str, Any]:
    (group,) = job["group"]
    return next(iter(group.values()))


def environment(task: dict[str, Any]) -> dict[str, str]:
    """Variables from the env block and from templates rendered as env."""
    (env,) = task.get("env", [{}])
    names = {key: str(value) for key, value in env.items() if not key.startswith("__")}
    for template in task.get("template", []):
        if template.get("env"):
            for line in template["data"].splitlines():
                if match := re.match(r"\s*([A-Z][A-Z0-9_]*)=", line):
                    names[match[1]] = "(from Vault)"
    return names


def seconds(duration: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(s|m)", duration).groups()  # type: ignore[union-attr]
    return float(number) * (60 if unit == "m" else 1)


@pytest.mark.parametrize(("job_name", "role_name"), JOBS.items())
class TestJob:
    def test_runs_this_version_and_its_role(
        self, job_name: str, role_name: str
    ) -> None:
        """The image tag is .version and the args start the job's role."""
        task = task_of(load_job(job_name))
        (config,) = task["config"]
        version = (ROOT / ".version").read_text().strip()

        assert config["image"].rsplit(":", 1)[1] == version
        assert config["args"] == ["worker", "--role", role_name]
        assert role_name in ROLES

    def test_sets_only_variables_infraops_reads(
        self, job_name: str, role_name: str
    ) -> None:
        """No variable in the job is unknown to infraops (a typo would be silent)."""
        known = env_names([*COMMON, *ROLES[role_name].settings])
        env = environment(task_of(load_job(job_name)))

        unknown = {
            name for name in env if name not in known and not name.startswith("OTEL_")
        }
        assert unknown == set()

    def test_sets_every_variable_the_role_requires(
        self, job_name: str, role_name: str
    ) -> None:
        """Every setting without a safe default is provided by the job."""
        required = {
            name
            for model in [*COMMON, *ROLES[role_name].settings]
            for name in model.required
        }
        env = environment(task_of(load_job(job_name)))

        assert required - set(env) == set()

    def test_secrets_come_from_vault_templates(
        self, job_name: str, role_name: str
    ) -> None:
        """Secret settings are never written in the job's env block."""
        task = task_of(load_job(job_name))
        (env,) = task.get("env", [{}])
        secrets = {
            name
            for model in [*COMMON, *ROLES[role_name].settings]
            for name in model.secret_names()
        }

        assert secrets & set(env) == set()

    def test_kill_timeout_exceeds_the_shutdown_grace(
        self, job_name: str, role_name: str
    ) -> None:
        """Nomad waits longer than the worker's graceful shutdown."""
        task = task_of(load_job(job_name))
        grace = float(environment(task)["WORKER_SHUTDOWN_GRACE"])

        assert seconds(task["kill_timeout"]) > grace

    def test_registers_metrics_for_prometheus(
        self, job_name: str, role_name: str
    ) -> None:
        """The metrics port is a service Prometheus can find by tag."""
        group = group_of(load_job(job_name))
        (service,) = group["service"]
        (env,) = task_of(load_job(job_name))["env"]

        assert service["port"] == "metrics"
        assert "prometheus" in service["tags"]
        assert env["METRICS_LISTEN"].endswith(":9090")
