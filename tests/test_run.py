"""Smoke tests of the Kedro project as a user runs it: `kedro run` in a copy of the project."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from tests.conftest import PROJECT_ROOT

PIPELINES = {"sampling", "encoding", "training", "generalization", "finetuning", "nas"}


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """The project's configuration and layout in a temporary folder, so runs write there."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root)
    (root / "src").mkdir()  # the package itself comes from the editable install
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    for layer in (PROJECT_ROOT / "data").iterdir():
        if layer.is_dir():
            (root / "data" / layer.name).mkdir(parents=True)
    return root


def kedro(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"}
    kedro_cli = Path(sys.executable).with_name("kedro")
    return subprocess.run(
        [str(kedro_cli), *args],
        check=False,
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_every_pipeline_is_registered():
    bootstrap_project(PROJECT_ROOT)
    from kedro.framework.project import pipelines

    assert PIPELINES | {"__default__"} <= set(pipelines)
    default_nodes = {n.name for n in pipelines["__default__"].nodes}
    assert "plan_subnets" in default_nodes


@pytest.mark.slow
def test_default_run_on_tiny_parameters(project_copy: Path):
    bootstrap_project(project_copy)
    with KedroSession.create(
        project_path=project_copy, runtime_params={"sampling": {"num_subnets": 5}}
    ) as session:
        session.run()
    plan = pd.read_csv(project_copy / "data" / "02_intermediate" / "sampling_plan.csv")
    assert len(plan) == 5


@pytest.mark.slow
@pytest.mark.parametrize("flag", ["--pipelines", "--pipeline"])
def test_cli_runs_a_named_pipeline_with_either_flag(project_copy: Path, flag: str):
    result = kedro(project_copy, "run", flag, "sampling", "--params", "sampling.num_subnets=7")
    assert result.returncode == 0, result.stdout + result.stderr
    plan = pd.read_csv(project_copy / "data" / "02_intermediate" / "sampling_plan.csv")
    assert len(plan) == 7
