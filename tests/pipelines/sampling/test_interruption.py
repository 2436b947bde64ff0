"""`kedro run --pipelines sampling` killed with SIGKILL at named points (after a group of rows
is on disk, and while its sidecar is being replaced) resumes with every measured row kept and
none duplicated (real subprocesses, real kills; the run announces each point it reaches, see
`ofa_latency_kedro.pause`)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from ofa_latency_kedro.measurement.log import row_key
from tests.helpers import FAST_PROTOCOL, PausedProcess, kedro, kedro_command, params_arg

NUM_SUBNETS = 30
GROUP = FAST_PROTOCOL["interleave"]  # rows measured together and appended in one write
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


def run_until_killed(project: Path, point: str) -> None:
    """Start a sampling run, wait until it stops at ``point`` and SIGKILL it there."""
    run = PausedProcess(
        kedro_command("run", "--pipelines", "sampling", "--params", PARAMS),
        point,
        project.parent / "paused_at",
        cwd=project,
    )
    try:
        run.wait_for_pause()
    finally:
        run.kill()


@pytest.mark.slow
def test_killed_runs_resume_without_losing_or_repeating_rows(project_copy: Path):
    csv = project_copy / "data" / "01_raw" / "latency" / "killbox_compofa.csv"
    sidecar = csv.with_suffix(".json")

    # 1. right after the first group of rows is on disk
    run_until_killed(project_copy, "latency_log.appended:killbox_compofa.csv@1")
    first = complete_lines(csv)
    assert len(first) - 1 == GROUP
    assert len(json.loads(sidecar.read_text())["sessions"]) == 1

    # 2. while the sidecar of the next run is replaced: new version written, not yet renamed
    run_until_killed(project_copy, "atomic_write.written:killbox_compofa.json")
    assert complete_lines(csv) == first
    assert len(json.loads(sidecar.read_text())["sessions"]) == 1  # the previous version
    leftovers = [p.name for p in csv.parent.iterdir() if p.name.endswith(".tmp")]
    assert len(leftovers) == 1 and leftovers[0].startswith(".killbox_compofa.json.")

    # 3. after four more groups
    run_until_killed(project_copy, "latency_log.appended:killbox_compofa.csv@4")
    kept = complete_lines(csv)
    assert kept[: len(first)] == first, "a kill lost or rewrote rows written before it"
    assert len(kept) - 1 == 5 * GROUP

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
    sessions = json.loads(sidecar.read_text())["sessions"]
    # the second run was killed before its session reached the sidecar; the killed ones
    # are marked so by the run after them
    assert [s["status"] for s in sessions] == ["interrupted", "interrupted", "complete"]
    assert sessions[-1]["measured"] == NUM_SUBNETS - 5 * GROUP
    assert sessions[-1]["already_measured"] == 5 * GROUP


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
