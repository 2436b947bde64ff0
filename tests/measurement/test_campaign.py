"""Building a dataset: resume, refusing mixed protocols, and the run's report."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ofa_latency_kedro.errors import ParameterError
from ofa_latency_kedro.measurement.campaign import (
    SamplingTarget,
    check_resumable,
    measure_plan,
    summarize_dataset,
)
from ofa_latency_kedro.measurement.log import LatencyDataError
from ofa_latency_kedro.measurement.protocol import Protocol
from ofa_latency_kedro.pipelines.sampling.settings import SamplingSettings
from ofa_latency_kedro.search_space import get_space


@pytest.fixture
def lut_params(shared_dir: Path) -> dict:
    return {
        "hardware": "auto",
        "backend": "lut",
        "lut_dir": str(shared_dir / "seed_data" / "latency_table@note10"),
        "protocol": {"interleave": 4, "repeat_probe": 2},
    }


def target_of(params: dict, space: str) -> SamplingTarget:
    return SamplingTarget.from_settings(SamplingSettings.from_dict(params), space=space)


def run(plan, existing, sidecar, target):
    rows, sidecars = [], []
    for kind, payload in measure_plan(plan, existing, sidecar, target, progress=False):
        (rows.extend if kind == "rows" else sidecars.append)(payload)
    return rows, sidecars


def test_target_names_the_dataset(lut_params):
    target = target_of(lut_params, space="compofa")
    assert target.name == "note10_lookuptable_compofa"
    assert Path(target.lut_dir).is_absolute()
    assert target.ray is None
    named = target_of({**lut_params, "hardware": "pixel8"}, space="ofa")
    assert named.name == "pixel8_ofa"
    with pytest.raises(ParameterError, match="'sampling.hardware' must be a file-name-safe"):
        target_of({**lut_params, "hardware": "a/b"}, space="ofa")


def test_ray_needs_a_hardware_name(lut_params):
    with pytest.raises(ParameterError, match="must name the device when measuring on Ray"):
        target_of({**lut_params, "ray": {"address": "auto"}}, space="ofa")
    target = target_of({**lut_params, "hardware": "jetson", "ray": {"address": "auto"}}, "ofa")
    assert (target.ray.address, target.ray.resource, target.ray.num_cpus) == (
        "auto",
        "hw:jetson",
        1.0,
    )
    chosen = {"address": "auto", "resource": "phone", "num_cpus": 2}
    target = target_of({**lut_params, "hardware": "jetson", "ray": chosen}, "ofa")
    assert (target.ray.resource, target.ray.num_cpus) == ("phone", 2.0)


def test_measure_plan_skips_what_is_there_and_keeps_sessions(lut_params):
    target = target_of(lut_params, space="compofa")
    plan = get_space("compofa", width_mult=1.2).sample_distinct(10, seed=0)
    rows, sidecars = run(plan[:6], None, None, target)
    assert len(rows) == 6
    assert [s["sessions"][-1]["status"] for s in sidecars] == ["running", "complete"]
    first = sidecars[-1]
    assert first["sessions"][-1]["measured"] == 6
    assert first["sessions"][-1]["repeat_probe"]["within_run"]["subnets"] == 2

    more, sidecars = run(plan, pd.DataFrame(rows), first, target)
    assert [r["child_arch"] for r in more] == [a.to_seed_string() for a in plan[6:]]
    session = sidecars[-1]["sessions"][-1]
    assert (session["already_measured"], session["measured"]) == (6, 4)
    assert len(sidecars[-1]["sessions"]) == 2


def test_a_session_that_never_finished_is_marked_interrupted(lut_params):
    target = target_of(lut_params, space="compofa")
    plan = get_space("compofa", width_mult=1.2).sample_distinct(4, seed=0)
    rows, sidecars = run(plan[:2], None, None, target)
    killed = sidecars[0]  # what a run killed while measuring leaves on disk
    assert killed["sessions"][-1]["status"] == "running"
    _, sidecars = run(plan, pd.DataFrame(rows), killed, target)
    for sidecar in sidecars:  # said from the new run's first sidecar on
        assert [s["status"] for s in sidecar["sessions"][:-1]] == ["interrupted"]
    assert sidecars[-1]["sessions"][-1]["status"] == "complete"
    _, again = run(plan, pd.DataFrame(rows), sidecars[-1], target)
    assert [s["status"] for s in again[-1]["sessions"]] == ["interrupted", "complete", "complete"]


def test_mixed_protocols_are_refused(lut_params):
    target = target_of(lut_params, space="ofa")
    sidecar = {
        "backend": "torch-cpu",
        "width_mult": 1.0,
        "protocol": {**Protocol().to_dict(), "batch_size": 64},
    }
    with pytest.raises(LatencyDataError) as info:
        check_resumable(sidecar, target, Protocol(), 1.2)
    message = str(info.value)
    assert "dataset 'note10_lookuptable_ofa' was measured with backend 'torch-cpu'" in message
    assert "width_mult 1.0 (now 1.2)" in message
    assert "protocol.batch_size 64 (now 1)" in message
    assert "another sampling.hardware name" in message
    check_resumable(None, target, Protocol(), 1.2)


def test_summary_of_a_dataset():
    frame = pd.DataFrame({"latency": [1.0, 2.0, 4.0]})
    frame.attrs["source"] = "x.csv"
    sidecar = {"hardware": "hw", "space": "ofa", "backend": "lut", "sessions": [{"measured": 3}]}
    summary = summarize_dataset(frame, sidecar)
    assert summary["rows"] == 3
    assert summary["latency_ms"] == {"min": 1.0, "median": 2.0, "max": 4.0}
    assert summary["last_session"] == {"measured": 3}
