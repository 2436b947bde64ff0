"""The sampling pipeline, run with an in-memory catalog around a real latency folder."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from ofa_latency_kedro.datasets import LatencyFolder, LatencyFolderDataset
from ofa_latency_kedro.errors import LatencyDataError, ParameterError
from ofa_latency_kedro.measurement import Protocol
from ofa_latency_kedro.measurement.campaign import SamplingTarget, measure_plan
from ofa_latency_kedro.measurement.log import DamagedRowsError, DatasetBusyError
from ofa_latency_kedro.measurement.lookup_table import LatencyLookupTable
from ofa_latency_kedro.pipelines.sampling import create_pipeline
from ofa_latency_kedro.pipelines.sampling.nodes import (
    plan_subnets,
    report_sampling,
    resolve_sampling_target,
)
from ofa_latency_kedro.pipelines.sampling.settings import SamplingSettings
from ofa_latency_kedro.search_space import Arch, get_space
from tests.helpers import FAST_PROTOCOL
from tests.measurement.test_drift import PROTOCOL as STEADY_PROTOCOL
from tests.measurement.test_drift import steady_ms, use_steady_backend
from tests.measurement.test_log import merged, start_writer
from tests.pipelines.runner import project_catalog

PARAMS = {
    "space": "compofa",
    "resolutions": "seed",
    "width_mult": 1.0,
    "num_subnets": 40,
    "seed": 3,
    "hardware": "auto",
    "backend": "torch-cpu",
    "protocol": FAST_PROTOCOL,
    "progress": False,
}


def plan(params: dict, folder: Path = Path("no-such-folder")) -> pd.DataFrame:
    """The plan node's table for ``params`` and the latency folder ``folder``."""
    return plan_subnets(params, LatencyFolder(folder), resolve_sampling_target(params))


def run_pipeline(params: dict, folder: Path) -> DataCatalog:
    catalog = project_catalog(
        {
            "params:sampling": MemoryDataset(params),
            "sampling_plan": MemoryDataset(),
            "measured_so_far": LatencyFolderDataset(str(folder)),
            "raw_latency": LatencyFolderDataset(str(folder)),
            "sampling_report": MemoryDataset(),
        }
    )
    SequentialRunner().run(create_pipeline(), catalog)
    return catalog


@pytest.fixture
def lut_params(shared_dir: Path) -> dict:
    return {
        **PARAMS,
        "backend": "lut",
        "width_mult": 1.2,
        "lut_dir": str(shared_dir / "seed_data" / "latency_table@note10"),
    }


def test_plan_is_distinct_valid_and_reproducible():
    table = plan(PARAMS)
    assert len(table) == 40
    assert table["canonical_key"].is_unique
    assert set(table["space"]) == {"compofa"}
    space = get_space("compofa")
    assert all(space.contains(Arch.parse(text)) for text in table["child_arch"])
    pd.testing.assert_frame_equal(table, plan(PARAMS))
    assert not table.equals(plan({**PARAMS, "seed": 4}))


def test_plan_with_wider_network_and_ofa_resolutions():
    table = plan({**PARAMS, "space": "ofa", "resolutions": "ofa", "width_mult": 1.2})
    assert set(table["width_mult"]) == {1.2}
    assert table["canonical_key"].str.startswith("w1.2/").all()
    assert table["resolution"].isin(range(128, 225, 4)).all()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"space": "resnet"}, "'sampling.space' is not usable: unknown search space 'resnet'"),
        ({"num_subnets": 5000}, "'sampling.num_subnets' asks for 5000 distinct subnets, but"),
        ({"num_subnets": 0}, "'sampling.num_subnets' must be at least 1, got 0"),
        ({"num_subnets": "abc"}, "'sampling.num_subnets' must be an integer, got 'abc'"),
        ({"num_subnet": 5}, "unknown parameter 'sampling.num_subnet'; did you mean 'num_subnets'"),
        ({"resolutions": [161]}, "'sampling.resolutions' is not usable: resolutions [161]"),
        ({"width_mult": 1.1}, "'sampling.width_mult' is not usable: width_mult 1.1"),
        ({"backend": "tpu"}, "'sampling.backend' must be one of 'torch-cpu'"),
        ({"backend": "lut"}, "'sampling.lut_dir' must be given for the 'lut' backend"),
        ({"lut_dir": "tables"}, "'sampling.lut_dir' only applies to the 'lut' backend"),
        ({"protocol": {"rounds": 0}}, "'sampling.protocol.rounds' must be an integer >= 1"),
        ({"ray": {"num_cpus": 0}}, "'sampling.ray.num_cpus' must be positive, got 0.0"),
        ({"ray": {"adress": "auto"}}, "unknown parameter 'sampling.ray.adress'"),
        ({"on_damaged_rows": "skip"}, "'sampling.on_damaged_rows' must be one of"),
        ({"strategy": "greedy"}, "'sampling.strategy' must be one of 'random', 'frontier'"),
        ({"strategy": "frontier", "frontier": {"band": 0}}, "'sampling.frontier.band' must be"),
        ({"frontier": {"bnad": 0.1}}, "'sampling.frontier.bnad'; did you mean 'band'"),
    ],
)
def test_bad_parameters_are_named(changes, message):
    with pytest.raises(ParameterError) as info:
        plan({**PARAMS, **changes})
    assert message in str(info.value)


@pytest.mark.parametrize("count", [-5, 0])
def test_no_subnets_to_measure_stops_before_anything_is_written(tmp_path: Path, count: int):
    with pytest.raises(ParameterError, match="'sampling.num_subnets' must be at least 1"):
        run_pipeline({**PARAMS, "num_subnets": count}, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_the_defaults_are_the_settings_classes():
    settings = SamplingSettings.from_dict({})
    assert settings == SamplingSettings()
    assert settings.protocol == Protocol() and settings.ray.address is None
    assert (settings.hardware, settings.backend, settings.space) == ("auto", "torch-cpu", "ofa")


def test_lookup_table_dataset_is_written_reported_and_extended(
    tmp_path: Path, lut_params, shared_dir
):
    catalog = run_pipeline(lut_params, tmp_path)
    csv = tmp_path / "note10_lookuptable_compofa.csv"
    frame = pd.read_csv(csv)
    assert len(frame) == 40
    table = LatencyLookupTable.from_dir(lut_params["lut_dir"])
    assert frame["latency"].tolist() == [
        table.latency(Arch.parse(text, width_mult=1.2)) for text in frame["child_arch"]
    ]
    report = catalog.load("sampling_report")
    assert report["rows"] == 40
    assert report["last_session"]["measured"] == 40
    assert report["last_session"]["status"] == "complete"

    run_pipeline({**lut_params, "num_subnets": 60}, tmp_path)
    extended = pd.read_csv(csv)
    assert len(extended) == 60
    pd.testing.assert_frame_equal(extended.head(40), frame)
    sidecar = (
        LatencyFolderDataset(str(tmp_path)).load()["note10_lookuptable_compofa"]().attrs["sidecar"]
    )
    assert [s["measured"] for s in sidecar["sessions"]] == [40, 20]
    assert sidecar["descriptor"]["kind"] == "lut"


def test_frontier_extends_a_random_set_with_new_subnets_near_the_budgets(
    tmp_path: Path, lut_params
):
    run_pipeline({**lut_params, "num_subnets": 60}, tmp_path)
    frontier = {"strategy": "frontier", "frontier": {"searches": 2, "generations": 10}}
    catalog = run_pipeline({**lut_params, "num_subnets": 80, **frontier}, tmp_path)
    frame = pd.read_csv(tmp_path / "note10_lookuptable_compofa.csv")
    keys = [Arch.parse(text, width_mult=1.2).canonical_key for text in frame["child_arch"]]
    assert len(frame) == 80 and len(set(keys)) == 80
    sidecar = json.loads((tmp_path / "note10_lookuptable_compofa.json").read_text())
    first, second = sidecar["sessions"]
    assert first["strategy"] == "random" and "budgets_ms" not in first
    assert (second["strategy"], second["measured"], second["already_measured"]) == (
        "frontier",
        20,
        60,
    )
    budgets = second["budgets_ms"]
    assert len(budgets) == 3 and budgets == sorted(budgets) and budgets[0] > 0
    assert catalog.load("sampling_report")["last_session"]["strategy"] == "frontier"


def test_frontier_without_an_initial_random_set_stops_naming_the_file(tmp_path: Path, lut_params):
    run_pipeline({**lut_params, "num_subnets": 12}, tmp_path)
    with pytest.raises(LatencyDataError) as info:
        run_pipeline({**lut_params, "strategy": "frontier"}, tmp_path)
    csv = tmp_path / "note10_lookuptable_compofa.csv"
    assert f"{csv} holds 12 distinct subnets, fewer than sampling.frontier.min_rows" in str(
        info.value
    )
    assert len(pd.read_csv(csv)) == 12


def test_torch_cpu_dataset_records_protocol_and_hardware(tmp_path: Path):
    catalog = run_pipeline({**PARAMS, "num_subnets": 4, "hardware": "box"}, tmp_path)
    frame = pd.read_csv(tmp_path / "box_compofa.csv")
    assert len(frame) == 4
    assert set(frame["backend"]) == {"torch-cpu"}
    report = catalog.load("sampling_report")
    assert report["protocol"]["reference"] is True
    assert report["protocol"]["reference_ms"] > 0
    assert report["last_session"]["repeat_probe"]["within_run"]["subnets"] == 2


def test_resuming_with_another_protocol_is_refused(tmp_path: Path):
    run_pipeline({**PARAMS, "num_subnets": 2, "hardware": "box"}, tmp_path)
    changed = {**PARAMS, "hardware": "box", "protocol": {**FAST_PROTOCOL, "batch_size": 4}}
    with pytest.raises(ValueError, match=r"protocol.batch_size 1 \(now 4\)"):
        run_pipeline(changed, tmp_path)
    assert len(pd.read_csv(tmp_path / "box_compofa.csv")) == 2


def test_a_damaged_dataset_stops_the_run_naming_file_line_and_the_way_on(
    tmp_path: Path, lut_params, caplog
):
    run_pipeline({**lut_params, "num_subnets": 20}, tmp_path)
    csv = tmp_path / "note10_lookuptable_compofa.csv"
    complete = pd.read_csv(csv)
    merged(csv)
    damaged = csv.read_bytes()
    with pytest.raises(DamagedRowsError) as info:
        run_pipeline({**lut_params, "num_subnets": 30}, tmp_path)
    assert str(info.value).startswith(f"{csv}, line 3: damaged row: ")
    assert "sampling.on_damaged_rows=reject" in str(info.value)
    assert csv.read_bytes() == damaged

    catalog = run_pipeline({**lut_params, "num_subnets": 30, "on_damaged_rows": "reject"}, tmp_path)
    assert "moved 2 damaged line(s) (3, 6)" in caplog.text
    resumed = pd.read_csv(csv)
    assert len(resumed) == 30 and resumed["child_arch"].is_unique
    assert set(complete["child_arch"]) <= set(resumed["child_arch"])  # the lost rows measured again
    assert len(pd.read_csv(tmp_path / "note10_lookuptable_compofa.rejected.csv")) == 2
    session = catalog.load("sampling_report")["last_session"]
    assert (session["already_measured"], session["measured"]) == (16, 14)


def test_a_dataset_another_process_writes_stops_the_run_before_measuring(
    tmp_path: Path, lut_params
):
    csv = tmp_path / "note10_lookuptable_compofa.csv"
    writer = start_writer(csv, tmp_path / "paused")
    try:
        before = csv.read_bytes()
        with pytest.raises(DatasetBusyError, match=f"is being written by pid {writer.process.pid}"):
            run_pipeline(lut_params, tmp_path)
        assert csv.read_bytes() == before
        assert not csv.with_suffix(".json").exists()
    finally:
        writer.kill()
    run_pipeline(lut_params, tmp_path)  # the lock went with the killed writer
    assert len(pd.read_csv(csv)) == 2 + 40  # the killed writer's rows, then this run's plan


def test_the_report_gives_both_probes_and_warns_of_a_drifted_reference(
    tmp_path: Path, monkeypatch, caplog
):
    """Two sessions on a machine that runs 10% faster in the second (see `SteadyBackend`):
    the report ends with the reference's figures and the warning, the rows keep the scale."""
    steady = use_steady_backend(monkeypatch)
    target = SamplingTarget("box", "compofa", steady.name, STEADY_PROTOCOL)
    folder = LatencyFolderDataset(str(tmp_path))
    plan = get_space("compofa").sample_distinct(10, seed=0)
    for speed, archs in ((1.0, plan[:6]), (0.9, plan)):
        monkeypatch.setattr(steady, "speed", speed)
        with folder.load().writing(target.name) as dataset:
            existing = dataset() if dataset.path.exists() else None
            sidecar = None if existing is None else existing.attrs["sidecar"]
            for kind, payload in measure_plan(archs, existing, sidecar, target, progress=False):
                if kind == "rows":
                    folder.save({f"{target.name}.csv": pd.DataFrame(payload)})
                else:
                    folder.save({f"{target.name}.json": payload})
    caplog.clear()
    caplog.set_level(logging.INFO, logger="ofa_latency_kedro")
    report = report_sampling(folder.load(), target)
    warning = (
        "dataset 'box_compofa': this machine's reference subnet now measures 9.00 ms, the "
        "dataset's calibration 10.00 ms (-10.0%): the machine runs faster than when the dataset "
        "was calibrated, by more than 5%; the dataset keeps its own scale (rows are reported "
        "relative to the reference and scaled by 10.00 ms)"
    )
    assert report["warnings"] == [warning]
    assert [(r.levelname, r.getMessage()) for r in caplog.records][-1] == ("WARNING", warning)
    done = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("Sampling"))
    assert (
        "repeat probe: 2 subnets, median difference 0.00% (max 0.00%) within the run, "
        "2 subnets, median difference 0.00% (max 0.00%) across sessions; reference subnet: "
        "9.00 ms now, the dataset's calibration 10.00 ms (-10.0%; measured at the session's start)"
    ) in done
    frame = pd.read_csv(tmp_path / "box_compofa.csv")
    assert frame["latency"].tolist() == pytest.approx([steady_ms(a) for a in plan])
