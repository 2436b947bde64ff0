"""The sampling pipeline, run with an in-memory catalog."""

from __future__ import annotations

import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from ofa_latency_kedro.pipelines.sampling import create_pipeline
from ofa_latency_kedro.pipelines.sampling.nodes import plan_subnets
from ofa_latency_kedro.search_space import Arch, get_space

PARAMS = {
    "space": "compofa",
    "resolutions": "seed",
    "width_mult": 1.0,
    "num_subnets": 40,
    "seed": 3,
}


def run_pipeline(params: dict) -> pd.DataFrame:
    catalog = DataCatalog(
        {"params:sampling": MemoryDataset(params), "sampling_plan": MemoryDataset()}
    )
    SequentialRunner().run(create_pipeline(), catalog)
    return catalog["sampling_plan"].load()


def test_plan_is_distinct_valid_and_reproducible():
    plan = run_pipeline(PARAMS)
    assert len(plan) == 40
    assert plan["canonical_key"].is_unique
    assert set(plan["space"]) == {"compofa"}
    space = get_space("compofa")
    assert all(space.contains(Arch.parse(text)) for text in plan["child_arch"])
    pd.testing.assert_frame_equal(plan, run_pipeline(PARAMS))
    assert not plan.equals(run_pipeline({**PARAMS, "seed": 4}))


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
