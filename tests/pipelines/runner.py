"""Running one pipeline on an in-memory catalog the way a ``kedro run`` does: inside an
MLflow run, with the project's MLflow records hook (what a Kedro session registers)."""

from __future__ import annotations

import mlflow
from kedro.framework.hooks.manager import _create_hook_manager
from kedro.io import DataCatalog
from kedro.pipeline import Pipeline
from kedro.runner import SequentialRunner

from ofa_latency_kedro.hooks import MlflowRecordsHook


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
