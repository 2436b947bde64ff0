"""Every parameter a `kedro run` uses is checked before any node runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import kedro


@pytest.mark.slow
def test_a_typo_in_a_later_pipeline_stops_the_run_before_sampling_measures(project_copy: Path):
    run = kedro(
        project_copy,
        "run",
        "--pipelines",
        "sampling,encoding,training,nas",
        "--params",
        "sampling.num_subnets=3,nas.populaton_size=8",
    )
    output = " ".join((run.stdout + run.stderr).split())
    assert run.returncode != 0
    assert "unknown parameter 'nas.populaton_size'; did you mean 'population_size'?" in output
    assert not list((project_copy / "data").rglob("*.csv"))  # nothing measured, nothing planned
