"""Training: one latency predictor per (hardware, space) dataset, optionally tuned with Ray
Tune (ASHA), each recorded as an MLflow run with metrics, plots and the checkpoint."""

from kedro.pipeline import Pipeline, node

from ofa_latency_kedro.pipelines.training.nodes import train_predictors


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                train_predictors,
                ["latency_model_input", "params:training", "params:ray"],
                ["latency_predictors", "predictor_metrics", "predictor_plots", "tuning_trials"],
                name="train_predictors",
            )
        ]
    )
