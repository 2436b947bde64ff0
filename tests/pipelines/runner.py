"""Running one pipeline on an in-memory catalog the way a ``kedro run`` does: inside an
MLflow run, with the project's MLflow records hook (what a Kedro session registers), on a
catalog that resolves the project's dataset factories (the hand-offs between nodes)."""

from __future__ import annotations

from typing import Any

import mlflow
import yaml
from kedro.framework.hooks.manager import _create_hook_manager
from kedro.io import AbstractDataset, DataCatalog
from kedro.pipeline import Pipeline
from kedro.runner import SequentialRunner

from ofa_latency_kedro.hooks import MlflowRecordsHook
from tests.helpers import PROJECT_ROOT


def dataset_factories() -> dict[str, Any]:
    """The dataset factories (patterns) of the project's catalog, conf/base/catalog.yml."""
    entries = yaml.safe_load((PROJECT_ROOT / "conf" / "base" / "catalog.yml").read_text())
    return {name: entry for name, entry in entries.items() if "{" in name}


def project_catalog(datasets: dict[str, AbstractDataset]) -> DataCatalog:
    """``datasets`` on a catalog that, like the project's, makes the namespaced hand-offs
    between a pipeline's nodes (e.g. ``training.fitted``) from its dataset factories."""
    catalog = DataCatalog.from_config(dataset_factories())
    for name, dataset in datasets.items():
        catalog[name] = dataset
    return catalog


def run_pipeline(pipeline: Pipeline, catalog: DataCatalog) -> DataCatalog:
    """Run ``pipeline`` on ``catalog`` under a parent MLflow run, records hook active."""
    hooks = _create_hook_manager()
    hooks.register(MlflowRecordsHook())
    with mlflow.start_run(run_name="kedro run"):
        try:
            SequentialRunner().run(pipeline, catalog, hook_manager=hooks)
        except Exception as error:
            hooks.hook.on_pipeline_error(
                error=error, run_params={}, pipeline=pipeline, catalog=catalog
            )
            raise
        hooks.hook.after_pipeline_run(
            run_params={}, run_result={}, pipeline=pipeline, catalog=catalog
        )
    return catalog
