"""The sampling pipeline, run with an in-memory catalog around a real latency folder."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from ofa_latency_kedro.datasets import LatencyFolderDataset
from ofa_latency_kedro.measurement.lookup_table import LatencyLookupTable
from ofa_latency_kedro.pipelines.sampling import create_pipeline
from ofa_latency_kedro.pipelines.sampling.nodes import plan_subnets
from ofa_latency_kedro.search_space import Arch, get_space
from tests.helpers import FAST_PROTOCOL

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


def run_pipeline(params: dict, folder: Path) -> DataCatalog:
    catalog = DataCatalog(
        {
            "params:sampling": MemoryDataset(params),
            "sampling_plan": MemoryDataset(),
            "sampling_target": MemoryDataset(),
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
    plan = plan_subnets(PARAMS)
    assert len(plan) == 40
    assert plan["canonical_key"].is_unique
    assert set(plan["space"]) == {"compofa"}
    space = get_space("compofa")
    assert all(space.contains(Arch.parse(text)) for text in plan["child_arch"])
    pd.testing.assert_frame_equal(plan, plan_subnets(PARAMS))
    assert not plan.equals(plan_subnets({**PARAMS, "seed": 4}))


def test_plan_with_wider_network_and_ofa_resolutions():
    plan = plan_subnets({**PARAMS, "space": "ofa", "resolutions": "ofa", "width_mult": 1.2})
    assert set(plan["width_mult"]) == {1.2}
    assert plan["canonical_key"].str.startswith("w1.2/").all()
    assert plan["resolution"].isin(range(128, 225, 4)).all()


def test_bad_parameters_name_the_problem():
    with pytest.raises(ValueError, match="unknown search space 'resnet'"):
        plan_subnets({**PARAMS, "space": "resnet"})
    with pytest.raises(ValueError, match="has only 1215"):
        plan_subnets({**PARAMS, "num_subnets": 5000})


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


def test_torch_cpu_dataset_records_protocol_and_hardware(tmp_path: Path):
    catalog = run_pipeline({**PARAMS, "num_subnets": 4, "hardware": "box"}, tmp_path)
    frame = pd.read_csv(tmp_path / "box_compofa.csv")
    assert len(frame) == 4
    assert set(frame["backend"]) == {"torch-cpu"}
    report = catalog.load("sampling_report")
    assert report["protocol"]["reference"] is True
    assert report["protocol"]["reference_ms"] > 0
    assert report["last_session"]["repeat_probe"]["subnets"] == 2


def test_resuming_with_another_protocol_is_refused(tmp_path: Path):
    run_pipeline({**PARAMS, "num_subnets": 2, "hardware": "box"}, tmp_path)
    changed = {**PARAMS, "hardware": "box", "protocol": {**FAST_PROTOCOL, "batch_size": 4}}
    with pytest.raises(ValueError, match=r"protocol.batch_size 1 \(now 4\)"):
        run_pipeline(changed, tmp_path)
    assert len(pd.read_csv(tmp_path / "box_compofa.csv")) == 2
