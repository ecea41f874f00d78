"""The command line as an operator meets it: exit codes, errors, secrets."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.cleanup.conftest import Lab, infraops
from tests.lab._proc import free_port

ROOT = Path(__file__).resolve().parents[3]


class TestBasics:
    def test_help_lists_the_commands(self, clean_env: dict[str, str]) -> None:
        """`infraops --help` names every command group."""
        done = infraops("--help", env=clean_env)

        assert done.returncode == 0
        for command in ("worker", "run", "config", "version"):
            assert command in done.stdout

    def test_version_is_the_dot_version_file(self, clean_env: dict[str, str]) -> None:
        """`infraops version` prints what .version says."""
        done = infraops("version", env=clean_env)

        assert done.stdout.strip() == (ROOT / ".version").read_text().strip()

    def test_version_option_matches_the_command(
        self, clean_env: dict[str, str]
    ) -> None:
        """`infraops --version` prints the same as `infraops version`."""
        done = infraops("--version", env=clean_env)

        assert done.returncode == 0
        assert done.stdout == infraops("version", env=clean_env).stdout

    def test_console_script_and_module_agree(self, clean_env: dict[str, str]) -> None:
        """The `infraops` script and `python -m infraops` are the same program."""
        script = Path(sys.executable).with_name("infraops")
        done = subprocess.run(
            [str(script), "version"],
            env=clean_env,
            capture_output=True,
            text=True,
            check=False,
        )

        assert done.stdout == infraops("version", env=clean_env).stdout


class TestConfigurationErrors:
    def test_unknown_role_lists_the_known_ones(self, clean_env: dict[str, str]) -> None:
        """A mistyped role is a usage error naming the roles that exist."""
        done = infraops("worker", "--role", "cleanpu", env=clean_env)

        assert done.returncode == 2
        assert "unknown role 'cleanpu'" in done.stderr
        assert "cleanup" in done.stderr
        assert "Traceback" not in done.stderr

    @pytest.mark.parametrize(
        ("variable", "value"),
        [
            ("SSH_PORT", "twenty-two"),
            ("METRICS_LISTEN", "9090"),
            ("NOMAD_ADDR", "nomad:4646"),
        ],
    )
    def test_invalid_setting_names_the_variable(
        self, clean_env: dict[str, str], variable: str, value: str
    ) -> None:
        """A bad environment variable stops the worker with its name, exit 2."""
        done = infraops(
            "worker", "--role", "cleanup", env=clean_env | {variable: value}
        )

        assert done.returncode == 2
        assert variable in done.stderr
        assert "Traceback" not in done.stderr

    def test_missing_ssh_key_names_the_variable(
        self, clean_env: dict[str, str], tmp_path: Path
    ) -> None:
        """A key file that is not there is reported before anything connects."""
        env = clean_env | {"SSH_KEY_PATH": str(tmp_path / "absent")}
        done = infraops("worker", "--role", "cleanup", env=env)

        assert done.returncode == 2
        assert "SSH_KEY_PATH" in done.stderr

    def test_unreachable_temporal_is_a_configuration_error(
        self, clean_env: dict[str, str]
    ) -> None:
        """No Temporal at TEMPORAL_ADDRESS: exit 2 and the variable named."""
        env = clean_env | {"TEMPORAL_ADDRESS": "127.0.0.1:1"}
        done = infraops("run", "cleanup", "--no-wait", env=env)

        assert done.returncode == 2
        assert "TEMPORAL_ADDRESS" in done.stderr

    def test_config_show_redacts_secrets(self, clean_env: dict[str, str]) -> None:
        """`config show` prints settings but never the token."""
        secret = "nomad-secret-0xdeadbeef"
        env = clean_env | {"NOMAD_TOKEN": secret}

        human = infraops("config", "show", "--role", "cleanup", env=env)
        as_json = json.loads(
            infraops("config", "show", "--role", "cleanup", "--json", env=env).stdout
        )

        assert human.returncode == 0
        assert secret not in human.stdout + human.stderr
        assert "NOMAD_TOKEN" in human.stdout
        assert as_json["NOMAD_TOKEN"] == "[redacted]"
        assert as_json["SSH_USER"] == "root"
        assert as_json["TEMPORAL_ADDRESS"] == "localhost:7233"


class TestInput:
    @pytest.mark.parametrize(
        ("document", "named"),
        [
            ('{"grace_days": -1}', "grace_days"),
            ('{"grace_dayz": 3}', "grace_dayz"),
            ('{"data_dir": "relative/path"}', "data_dir"),
            ('{"data_dir": "/"}', "data_dir"),
            ('{"exclude": ["../etc"]}', "exclude"),
            ("[1, 2]", "JSON object"),
            ("{not json", "not valid JSON"),
        ],
    )
    def test_invalid_input_names_the_field(
        self, clean_env: dict[str, str], document: str, named: str
    ) -> None:
        """A bad --input document is a usage error that names the problem."""
        done = infraops("run", "cleanup", "--input", "-", env=clean_env, input=document)

        assert done.returncode == 2
        assert named in done.stderr
        assert "Traceback" not in done.stderr

    def test_unreadable_input_file(
        self, clean_env: dict[str, str], tmp_path: Path
    ) -> None:
        """A missing --input file is named with the reason."""
        done = infraops(
            "run", "cleanup", "--input", str(tmp_path / "nope.json"), env=clean_env
        )

        assert done.returncode == 2
        assert "nope.json" in done.stderr


@pytest.mark.lab
class TestAgainstTheLab:
    def test_no_wait_prints_a_readable_workflow_id(self, lab: Lab) -> None:
        """--no-wait starts the workflow and prints its stable, readable id."""
        done = lab.run("--no-wait", "--node", "node-1")

        assert done.returncode == 0, done.stderr
        assert re.fullmatch(r"cleanup-manual-\d{8}T\d{6}Z\n", done.stdout)

    def test_local_worker_with_unreachable_collector(self, lab: Lab) -> None:
        """--local-worker runs the role in-process; a dead collector blocks nothing."""
        env = lab.env | {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
        }
        document = json.dumps({"data_dir": lab.fleet.data_dir, "nodes": ["node-1"]})
        started = time.monotonic()

        done = infraops(
            "run",
            "cleanup",
            "--local-worker",
            "--json",
            "--input",
            "-",
            env=env,
            input=document,
        )

        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["nodes"][0]["status"] == "done"
        assert time.monotonic() - started < 30
        assert "cleanup-local-" in done.stderr

    def test_failed_workflow_exits_1_with_the_reason(self, lab: Lab) -> None:
        """A workflow that fails (Nomad refuses the token) exits 1 and says why."""
        env = lab.env | {"NOMAD_TOKEN": "wrong-token"}
        done = infraops(
            "run",
            "cleanup",
            "--local-worker",
            "--json",
            "--input",
            "-",
            env=env,
            input=json.dumps({"data_dir": lab.fleet.data_dir}),
        )

        assert done.returncode == 1
        assert "Permission denied" in done.stderr
        assert "wrong-token" not in done.stderr + done.stdout
        document = json.loads(done.stdout)
        assert document["status"] == "failed"
        assert "Permission denied" in document["error"]
        assert "Traceback" not in done.stderr

    def test_unknown_namespace_is_a_configuration_error(self, lab: Lab) -> None:
        """A namespace the server does not have is named, exit 2."""
        env = lab.env | {"TEMPORAL_NAMESPACE": "no-such-namespace"}
        done = infraops("run", "cleanup", "--no-wait", env=env)

        assert done.returncode == 2
        assert "TEMPORAL_NAMESPACE" in done.stderr

    def test_url_credentials_are_never_shown(self, lab: Lab) -> None:
        """A password inside a URL is hidden in settings and errors alike."""
        env = lab.env | {"NOMAD_ADDR": "http://ops:SECRET-CANARY@127.0.0.1:1"}
        document = json.dumps({"data_dir": lab.fleet.data_dir})

        shown = infraops("config", "show", "--role", "cleanup", env=env)
        failed = infraops(
            "run", "cleanup", "--local-worker", "--input", "-", env=env, input=document
        )

        assert "SECRET-CANARY" not in shown.stdout + shown.stderr
        assert "http://***@127.0.0.1:1" in shown.stdout
        assert failed.returncode == 1
        assert "SECRET-CANARY" not in failed.stdout + failed.stderr

    def test_sigterm_stops_the_worker_gracefully(self, lab: Lab) -> None:
        """SIGTERM makes a worker shut down cleanly with exit code 0."""
        worker = subprocess.Popen(
            [sys.executable, "-m", "infraops", "worker", "--role", "cleanup"],
            env=lab.env | {"METRICS_LISTEN": f"127.0.0.1:{free_port()}"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        seen = b""
        while b"polling" not in seen and time.monotonic() < deadline:
            seen += worker.stdout.readline()  # type: ignore[union-attr]
        worker.terminate()
        rest, _ = worker.communicate(timeout=30)

        assert worker.returncode == 0
        assert b"shutting down" in rest
