"""Drift made visible: each session measures the reference again and warns when it moved more
than `REFERENCE_DRIFT_WARNING` from the dataset's calibration (the dataset keeps its scale),
and the repeat probe measures rows of earlier sessions again as well as this run's.

`SteadyBackend` is a CPU backend whose passes take fixed times, all multiplied by ``speed`` (a
machine running ``speed`` times slower), so every figure here is exact."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ofa_latency_kedro.measurement.backends import (
    BACKENDS,
    Backend,
    SubnetRunner,
    get_backend,
)
from ofa_latency_kedro.measurement.campaign import SamplingTarget, measure_plan, summarize_dataset
from ofa_latency_kedro.measurement.protocol import (
    REFERENCE_ARCH,
    REFERENCE_DRIFT_WARNING,
    Protocol,
    ReferenceCheck,
)
from ofa_latency_kedro.measurement.session import probe_picks
from ofa_latency_kedro.search_space import Arch, get_space

REFERENCE_KEY = Arch.parse(REFERENCE_ARCH).canonical_key
#: The reference's time at speed 1, so a dataset calibrated there has ``reference_ms`` 10.
REFERENCE_MS = 10.0
PROTOCOL = Protocol(warmup_runs=1, rounds=2, runs_per_round=2, interleave=2, repeat_probe=4)


class _Fixed(SubnetRunner):
    def __init__(self, ms: float) -> None:
        self.ms = ms

    def time_once(self) -> float:
        return self.ms


def steady_ms(arch: Arch) -> float:
    """A subnet's time at speed 1 (any positive figure that differs between subnets)."""
    return sum(arch.d) + sum(arch.ks) / 10 + arch.r / 100


class SteadyBackend(Backend):
    """Every pass of a subnet takes `steady_ms`, of the reference `REFERENCE_MS`, times
    ``speed``; ``calibrations`` counts the reference measurements."""

    name = "steady-cpu"
    speed = 1.0
    calibrations = 0

    def runner(self, arch: Arch) -> SubnetRunner:
        base = REFERENCE_MS if arch.canonical_key == REFERENCE_KEY else steady_ms(arch)
        return _Fixed(base * type(self).speed)

    def measure_reference(self) -> float:
        type(self).calibrations += 1
        return super().measure_reference()


def use_steady_backend(monkeypatch: pytest.MonkeyPatch, speed: float = 1.0) -> type[SteadyBackend]:
    """Register `SteadyBackend` for one test, at ``speed``, with no calibrations counted."""
    monkeypatch.setitem(BACKENDS, SteadyBackend.name, SteadyBackend)
    monkeypatch.setattr(SteadyBackend, "calibrations", 0)
    monkeypatch.setattr(SteadyBackend, "speed", speed)
    return SteadyBackend


@pytest.fixture
def steady(monkeypatch) -> type[SteadyBackend]:
    return use_steady_backend(monkeypatch)


def session(plan, existing, sidecar, target) -> tuple[list[dict], dict]:
    """One sampling session: its rows and its final sidecar."""
    rows, sidecars = [], []
    for kind, payload in measure_plan(plan, existing, sidecar, target, progress=False):
        (rows.extend if kind == "rows" else sidecars.append)(payload)
    return rows, sidecars[-1]


def test_the_drift_warning_has_both_figures_and_a_threshold_in_one_place():
    slower = ReferenceCheck(now_ms=11.0, dataset_ms=10.0)
    assert slower.drift == pytest.approx(0.1) and slower.drifted
    assert slower.warning("dataset 'box_ofa'") == (
        "dataset 'box_ofa': this machine's reference subnet now measures 11.00 ms, the "
        "dataset's calibration 10.00 ms (+10.0%): the machine runs slower than when the dataset "
        "was calibrated, by more than 5%; the dataset keeps its own scale (rows are reported "
        "relative to the reference and scaled by 10.00 ms)"
    )
    assert "(-20.0%): the machine runs faster" in ReferenceCheck(8.0, 10.0).warning("x")
    within = 10.0 * (1 + REFERENCE_DRIFT_WARNING * 0.99)
    beyond = 10.0 * (1 - REFERENCE_DRIFT_WARNING * 1.01)
    assert not ReferenceCheck(within, 10.0).drifted and ReferenceCheck(beyond, 10.0).drifted
    assert ReferenceCheck(10.0, 10.0, calibrated=True).record() == {
        "reference_now_ms": 10.0,
        "reference_drift": 0.0,
        "reference_check": "this session calibrated the dataset's reference",
    }


def test_a_calibration_made_now_is_the_check_and_no_second_measurement(steady):
    with get_backend(steady.name, PROTOCOL) as backend:
        check = backend.check_reference()
    assert check == ReferenceCheck(REFERENCE_MS, REFERENCE_MS, calibrated=True)
    assert steady.calibrations == 1
    with get_backend(steady.name, Protocol(reference_ms=REFERENCE_MS)) as backend:
        assert backend.check_reference() == ReferenceCheck(REFERENCE_MS, REFERENCE_MS)
    assert steady.calibrations == 2
    with get_backend(steady.name, Protocol(reference=False)) as backend:
        assert backend.check_reference() is None
    assert steady.calibrations == 2


def test_a_slower_machine_is_warned_about_and_the_dataset_keeps_its_scale(
    steady, monkeypatch, caplog
):
    target = SamplingTarget("box", "compofa", steady.name, PROTOCOL)
    plan = get_space("compofa").sample_distinct(10, seed=0)
    rows, sidecar = session(plan[:6], None, None, target)
    first = sidecar["sessions"][-1]
    assert sidecar["protocol"]["reference_ms"] == REFERENCE_MS
    assert (first["reference_now_ms"], first["reference_drift"]) == (REFERENCE_MS, 0.0)
    assert first["reference_check"] == "this session calibrated the dataset's reference"
    assert steady.calibrations == 1
    assert "reference subnet now measures" not in caplog.text

    monkeypatch.setattr(steady, "speed", 1.1)
    more, sidecar = session(plan, pd.DataFrame(rows), sidecar, target)
    warning = (
        "dataset 'box_compofa': this machine's reference subnet now measures 11.00 ms, the "
        "dataset's calibration 10.00 ms (+10.0%): the machine runs slower than when the dataset "
        "was calibrated, by more than 5%; the dataset keeps its own scale (rows are reported "
        "relative to the reference and scaled by 10.00 ms)"
    )
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [warning]
    second = sidecar["sessions"][-1]
    assert second["reference_now_ms"] == pytest.approx(11.0)
    assert second["reference_drift"] == pytest.approx(0.1)
    assert second["reference_check"] == "measured at the session's start"
    assert sidecar["protocol"]["reference_ms"] == REFERENCE_MS
    assert [s["reference_now_ms"] for s in sidecar["sessions"][:-1]] == [REFERENCE_MS]
    assert [r["latency"] for r in more] == pytest.approx([steady_ms(a) for a in plan[6:]])
    across = second["repeat_probe"]["across_sessions"]
    assert across["subnets"] == 2 and across["max_rel_diff"] == pytest.approx(0.0, abs=1e-12)

    frame = pd.DataFrame(rows + more)
    assert summarize_dataset(frame, sidecar)["warnings"] == [warning]
    assert (
        summarize_dataset(frame, {**sidecar, "sessions": sidecar["sessions"][:1]})["warnings"] == []
    )


def test_the_lookup_table_has_no_reference_and_says_so(shared_dir: Path):
    target = SamplingTarget(
        "note10", "ofa", "lut", PROTOCOL, str(shared_dir / "seed_data" / "latency_table@note10")
    )
    plan = get_space("ofa", width_mult=1.2).sample_distinct(3, seed=0)
    _, sidecar = session(plan, None, None, target)
    record = sidecar["sessions"][-1]
    assert (record["reference_now_ms"], record["reference_drift"]) == (None, None)
    assert record["reference_check"] == "none: the lut backend sums lookup tables, it times nothing"
    assert summarize_dataset(pd.DataFrame({"latency": [1.0]}), sidecar)["warnings"] == []


def test_the_repeat_probe_measures_rows_of_earlier_sessions_and_reports_their_noise(
    shared_dir: Path,
):
    """Exact lookup-table latencies: this run's rows repeat exactly, and the earlier rows,
    stored 25% high, show exactly that difference across sessions."""
    target = SamplingTarget(
        "note10", "ofa", "lut", PROTOCOL, str(shared_dir / "seed_data" / "latency_table@note10")
    )
    plan = get_space("ofa", width_mult=1.2).sample_distinct(12, seed=0)
    rows, sidecar = session(plan[:8], None, None, target)
    assert sidecar["sessions"][-1]["repeat_probe"]["across_sessions"]["subnets"] == 0
    earlier = pd.DataFrame(rows)
    earlier["latency"] *= 1.25
    earlier["measured_at"] = [f"2026-01-0{i + 1}T00:00:00+00:00" for i in range(len(earlier))]

    _, sidecar = session(plan, earlier, sidecar, target)
    probe = sidecar["sessions"][-1]["repeat_probe"]
    assert probe["within_run"] == {"subnets": 2, "median_rel_diff": 0.0, "max_rel_diff": 0.0}
    across = probe["across_sessions"]
    assert across["subnets"] == PROTOCOL.repeat_probe // 2
    assert across["median_rel_diff"] == pytest.approx(0.2)
    assert across["max_rel_diff"] == pytest.approx(0.2)
    assert across["oldest_measured_at"] in set(earlier["measured_at"])


def test_probe_picks_are_seeded_bounded_and_half_from_earlier_sessions():
    now = [{"i": i} for i in range(10)]
    before = [{"j": j} for j in range(100)]
    within, across = probe_picks(now, before, 5, seed=1)
    assert (len(within), len(across)) == (3, 2)
    assert within == [now[0], now[4], now[9]]  # spread over the run
    assert all(row in before for row in across)
    assert probe_picks(now, before, 5, seed=1) == (within, across)
    assert {row["j"] for seed in range(20) for row in probe_picks(now, before, 5, seed)[1]} != {
        row["j"] for row in across
    }
    assert probe_picks(now, before[:1], 5, seed=1)[1] == before[:1]
    assert [len(p) for p in probe_picks(now, [], 5, seed=1)] == [5, 0]
    assert [len(p) for p in probe_picks(now, before, 1, seed=1)] == [1, 0]
    assert probe_picks([], before, 5, seed=1) == ([], [])  # a run that measured nothing
