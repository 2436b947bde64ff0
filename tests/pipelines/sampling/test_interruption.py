"""`kedro run --pipelines sampling` killed with SIGKILL at several points resumes with every
measured row kept and none duplicated (real subprocesses, real kills)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from ofa_latency_kedro.measurement.log import row_key
from tests.conftest import FAST_PROTOCOL, kedro, kedro_command, params_arg

NUM_SUBNETS = 30
PARAMS = ",".join(
    [
        "sampling.hardware=killbox",
        "sampling.space=compofa",
        f"sampling.num_subnets={NUM_SUBNETS}",
        "sampling.progress=false",
        params_arg("sampling.protocol", FAST_PROTOCOL),
    ]
)


def complete_lines(path: Path) -> list[str]:
    if not path.exists():
        return []
    data = path.read_text()
    return data[: data.rfind("\n") + 1].splitlines()


def run_until_killed(project: Path, csv: Path, at_rows: int, rng: random.Random) -> list[str]:
    """Start a sampling run and SIGKILL it once the CSV holds ``at_rows`` rows (plus a random
    delay, so the kill lands anywhere in measuring or writing). Returns the lines on disk."""
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"}
    process = subprocess.Popen(
        kedro_command("run", "--pipelines", "sampling", "--params", PARAMS),
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    try:
        while len(complete_lines(csv)) - 1 < at_rows:
            assert process.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "the run made no progress"
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.4))
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return complete_lines(csv)


@pytest.mark.slow
def test_killed_runs_resume_without_losing_or_repeating_rows(project_copy: Path):
    csv = project_copy / "data" / "01_raw" / "latency" / "killbox_compofa.csv"
    rng = random.Random(20261127)
    kept: list[str] = []
    for at_rows in (1, 9, 17):
        lines = run_until_killed(project_copy, csv, at_rows, rng)
        assert lines[: len(kept)] == kept, "a kill lost or rewrote rows written before it"
        assert len(lines) - 1 >= at_rows
        kept = lines

    result = kedro(project_copy, "run", "--pipelines", "sampling", "--params", PARAMS)
    assert result.returncode == 0, result.stdout + result.stderr
    final = complete_lines(csv)
    assert final[: len(kept)] == kept
    frame = pd.read_csv(csv)
    assert len(frame) == NUM_SUBNETS
    keys = [row_key(row) for row in frame.to_dict("records")]
    assert len(set(keys)) == NUM_SUBNETS
    plan = pd.read_csv(project_copy / "data" / "02_intermediate" / "sampling_plan.csv")
    assert set(keys) == set(plan["canonical_key"])
    sessions = pd.read_json(csv.with_suffix(".json"), typ="series")["sessions"]
    assert [s["status"] for s in sessions] == ["running"] * 3 + ["complete"]
    assert sum(s["measured"] for s in sessions[-1:]) == NUM_SUBNETS - (len(kept) - 1)


@pytest.mark.slow
def test_a_half_written_row_is_dropped_with_a_warning_and_measured_again(project_copy: Path):
    csv = project_copy / "data" / "01_raw" / "latency" / "killbox_compofa.csv"
    small = PARAMS.replace(f"num_subnets={NUM_SUBNETS}", "num_subnets=4")
    assert kedro(project_copy, "run", "--pipelines", "sampling", "--params", small).returncode == 0
    lines = complete_lines(csv)
    last = lines.pop()
    csv.write_text("\n".join(lines) + "\n" + last[: len(last) // 2])
    result = kedro(project_copy, "run", "--pipelines", "sampling", "--params", small)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "incomplete last line" in result.stdout + result.stderr
    frame = pd.read_csv(csv)
    assert len(frame) == 4
    assert frame["child_arch"].is_unique
