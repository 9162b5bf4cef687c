"""The deployment files, checked as far as this machine can without containers or Kubernetes: they
parse, their commands are the installed CLIs' with options those CLIs have, the image installs
extras that exist and writes a dagster.yaml Dagster accepts, and the settings they pass are read."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from retrostride.assets.settings import Settings
from retrostride.pipelines.runs import shipped_instance_config

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
COMPOSE = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
HELM = yaml.safe_load((ROOT / "deploy" / "helm" / "values.yaml").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _help(*command: str) -> str:
    result = subprocess.run(
        [str(BIN / command[0]), *command[1:], "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _options_exist(command: list[str], subcommands: int = 0) -> None:
    """Every option of `command` appears in its --help."""
    text = _help(*command[: 1 + subcommands])
    for option in (word for word in command if word.startswith("-")):
        assert re.search(rf"(^|[\s,]){re.escape(option)}[\s,=]", text), (
            f"{option} not an option of {command[: 1 + subcommands]}"
        )


@pytest.mark.parametrize("service", ["webserver", "daemon"])
def test_compose_services_run_the_installed_dagster_commands(service):
    command = COMPOSE["services"][service]["command"]
    _options_exist(command, subcommands=1 if command[0] == "dagster-daemon" else 0)
    assert COMPOSE["services"][service]["image"] == "retrostride:0.1.0"


def test_compose_points_the_warehouse_and_dagster_at_its_postgres_and_object_store(monkeypatch, tmp_path):
    environment = COMPOSE["services"]["webserver"]["environment"]
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RETROSTRIDE_HOME", str(tmp_path))
    catalog = Settings.from_env().catalog
    assert (
        catalog.shared
        and catalog.metadata.endswith("@postgres:5432/warehouse")
        and catalog.data == "s3://retrostride/warehouse/"
    )
    assert "postgres:5432/dagster" in environment["DAGSTER_POSTGRES_URL"]
    assert "CREATE DATABASE warehouse" in (ROOT / "deploy" / "postgres-init.sql").read_text()
    assert set(COMPOSE["services"]) >= {"postgres", "minio", "webserver", "daemon"}


def test_the_dockerfile_installs_extras_that_exist_and_runs_a_cli_that_does():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    [wanted] = re.findall(r"'\.\[([\w,]+)\]'", DOCKERFILE)
    assert set(wanted.split(",")) <= set(extras)
    for folder in re.findall(r"^COPY (\w+) \1$", DOCKERFILE, re.M):
        assert (ROOT / folder).is_dir()
    [cmd] = re.findall(r"^CMD (\[.*\])$", DOCKERFILE, re.M)
    _options_exist(json.loads(cmd))
    [script] = re.findall(r'python -c "(.*?)"', DOCKERFILE)
    assert subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True
    ).stdout == shipped_instance_config(True)


def test_the_shipped_postgres_instance_config_is_dagsters():
    config = yaml.safe_load(shipped_instance_config(postgres=True))
    assert config["storage"] == {"postgres": {"postgres_url": {"env": "DAGSTER_POSTGRES_URL"}}}
    assert config["concurrency"] == yaml.safe_load(shipped_instance_config(postgres=False))["concurrency"]


def test_helm_values_load_the_code_location_and_launch_runs_on_kubernetes():
    [deployment] = HELM["dagster-user-deployments"]["deployments"]
    arguments = deployment["dagsterApiGrpcArgs"]
    _options_exist(["dagster", "api", "grpc", *arguments], subcommands=2)
    module, attribute = arguments[arguments.index("--module-name") + 1], arguments[arguments.index("--attribute") + 1]
    check = subprocess.run(
        [sys.executable, "-c", f"import {module} as m; assert hasattr(m, '{attribute}')"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert check.returncode == 0, check.stderr
    assert HELM["runLauncher"]["type"] == "K8sRunLauncher"
    launcher = HELM["runLauncher"]["config"]["k8sRunLauncher"]
    assert {m["mountPath"] for m in launcher["volumeMounts"]} == {m["mountPath"] for m in deployment["volumeMounts"]}
    assert any(v.startswith("RETROSTRIDE_HOME=") for v in launcher["envVars"])
    assert "k8s" in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
