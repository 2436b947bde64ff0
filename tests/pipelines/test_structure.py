"""The shape of the pipelines as Kedro and kedro-viz see them: one namespace and tag per
pipeline, work split into stages, the datasets between pipelines (and those MLflow records)
under their own names, and data layers in data-engineering order."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from kedro.framework.startup import bootstrap_project
from kedro.pipeline import Pipeline

from ofa_latency_kedro.hooks import RECORDS
from ofa_latency_kedro.pipeline_registry import DEFAULT_PIPELINES
from tests.helpers import PROJECT_ROOT, kedro
from tests.pipelines.runner import dataset_factories

#: The stages of each pipeline: its node names, without the namespace.
STAGES = {
    "sampling": {"resolve_sampling_target", "plan_subnets", "measure_subnets", "report_sampling"},
    "encoding": {
        "read_latency_files",
        "merge_repeated_measurements",
        "split_subnets",
        "report_encoding",
    },
    "training": {"prepare_datasets", "fit_predictors", "evaluate_predictors", "plot_predictors"},
    "nas": {"load_predictors", "search_subnets", "verify_subnets", "export_subnets"},
    "finetuning": {
        "select_target",
        "load_sources",
        "score_learning_curves",
        "report_learning_curves",
        "adapt_to_target",
    },
    "generalization": {
        "select_devices",
        "leave_one_out",
        "train_on_every_device",
        "pick_reference_subnets",
        "report_leave_one_out",
    },
}


@pytest.fixture(scope="module")
def registered() -> dict[str, Pipeline]:
    bootstrap_project(PROJECT_ROOT)
    from kedro.framework.project import pipelines

    return dict(pipelines)


@pytest.fixture(scope="module")
def catalog_entries() -> dict:
    import yaml

    return yaml.safe_load((PROJECT_ROOT / "conf" / "base" / "catalog.yml").read_text())


def datasets_of(pipeline: Pipeline) -> set[str]:
    return {name for node in pipeline.nodes for name in (*node.inputs, *node.outputs)}


def layers_in_sequence(pipeline: Pipeline, entries: dict) -> set[tuple[str, str]]:
    """(layer of a dataset, layer of a dataset made from it) for every path in ``pipeline``."""

    def layer(dataset: str) -> str | None:
        return entries.get(dataset, {}).get("metadata", {}).get("kedro-viz", {}).get("layer")

    pairs = set()
    for dataset in datasets_of(pipeline):
        if layer(dataset) is None or dataset not in pipeline.all_inputs():
            continue
        for made in pipeline.from_inputs(dataset).all_outputs():
            if layer(made) is not None:
                pairs.add((layer(dataset), layer(made)))
    return pairs


@pytest.mark.parametrize("name", sorted(STAGES))
def test_each_pipeline_is_a_namespace_and_tag_of_its_name_in_stages(registered, name):
    pipeline = registered[name]
    assert {node.namespace for node in pipeline.nodes} == {name}
    assert all(name in node.tags for node in pipeline.nodes)
    assert {node.name for node in pipeline.nodes} == {f"{name}.{stage}" for stage in STAGES[name]}
    assert pipeline.only_nodes_with_tags(name).nodes == pipeline.nodes


def test_the_default_pipeline_is_sampling_encoding_training_and_nas(registered):
    default = registered["__default__"]
    assert {node.namespace for node in default.nodes} == set(DEFAULT_PIPELINES)
    assert set(default.nodes) == {n for name in DEFAULT_PIPELINES for n in registered[name].nodes}


def test_collapsed_namespaces_connect_in_the_order_of_the_work(registered):
    """kedro-viz draws a collapsed namespace as one box: these are the arrows between them."""
    default = registered["__default__"]
    producer = {name: node.namespace for node in default.nodes for name in node.outputs}
    arrows = {
        (producer[name], node.namespace)
        for node in default.nodes
        for name in node.inputs
        if name in producer and producer[name] != node.namespace
    }
    assert arrows == {
        ("sampling", "encoding"),
        ("encoding", "training"),
        ("training", "nas"),
        ("sampling", "nas"),  # verification compares with the measured subnets
    }


def test_only_hand_offs_inside_a_pipeline_carry_its_namespace(registered, catalog_entries):
    """Datasets between pipelines, parameters and every dataset the MLflow hooks record keep
    their catalog names; the namespaced ones are in-memory hand-offs passed as they are."""
    assert dataset_factories() == {
        "{namespace}.{name}": {"type": "MemoryDataset", "copy_mode": "assign"}
    }
    used = set()
    for name in STAGES:
        for dataset in datasets_of(registered[name]):
            used.add(dataset)
            if dataset.startswith("params:"):
                assert "." not in dataset, dataset
            elif dataset.startswith(f"{name}."):
                assert dataset.removeprefix(f"{name}.") not in catalog_entries, dataset
            else:
                assert dataset in catalog_entries, f"{name}: {dataset} is not in the catalog"
    assert set(RECORDS) <= used
    assert {n for n in catalog_entries if "{" not in n} <= used


def test_layers_are_drawn_in_data_engineering_order(catalog_entries):
    """kedro-viz sorts the layers from the graph of the pipeline shown, and draws none at all
    when they form a cycle (a raw dataset made from a model, say); the four namespaces of the
    default pipeline are the top level of its tree (collapsed, they are its boxes)."""
    from kedro_viz.data_access.managers import DataAccessManager
    from kedro_viz.integrations.kedro.data_loader import load_data
    from kedro_viz.server import populate_data

    catalog, pipelines, extras = load_data(PROJECT_ROOT)
    manager = DataAccessManager()
    populate_data(manager, catalog, pipelines, extras)
    order = ["raw", "model_input", "models", "model_output", "reporting"]
    assert manager.get_sorted_layers_for_registered_pipeline("__default__") == order
    for name, pipeline in pipelines.items():
        layers = manager.get_sorted_layers_for_registered_pipeline(name)
        for upstream, downstream in layers_in_sequence(pipeline, catalog_entries):
            assert order.index(upstream) <= order.index(downstream), (name, upstream, downstream)
            if upstream != downstream:  # kedro-viz orders only layers a path joins
                assert layers.index(upstream) < layers.index(downstream), (name, layers)
    tree = manager.create_modular_pipelines_tree_for_registered_pipeline("__default__")
    root_namespaces = {
        child.id for child in tree["__root__"].children if child.type == "modularPipeline"
    }
    assert root_namespaces == set(DEFAULT_PIPELINES)


@pytest.mark.slow
def test_a_run_can_pick_namespaces_and_nodes_by_their_namespaced_names(
    project_copy: Path, shared_dir: Path
):
    raw = project_copy / "data" / "01_raw" / "latency"
    for name in (
        "note10_lookuptable_fixedkernelcompofa.csv",
        "Intel_Xeon_CPU_fixedkernelcompofa.csv",
    ):
        shutil.copy(shared_dir / "seed_data" / "latency" / name, raw)
    result = kedro(project_copy, "run", "--pipelines", "encoding", "--namespaces", "encoding")
    assert result.returncode == 0, result.stdout + result.stderr
    table = pd.read_parquet(
        project_copy / "data" / "05_model_input" / "latency_model_input.parquet"
    )
    assert len(table) == 2 * 1215
    again = kedro(
        project_copy, "run", "--pipeline", "encoding", "--nodes", "encoding.report_encoding"
    )
    assert again.returncode != 0  # its hand-offs live in memory: it needs the nodes before it
    assert "encoding.merge_report" in again.stdout + again.stderr
