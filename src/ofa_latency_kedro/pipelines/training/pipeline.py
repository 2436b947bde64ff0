"""Training: one latency predictor per (hardware, space) dataset, optionally tuned with Ray
Tune (ASHA), each recorded as an MLflow run with metrics, plots and the checkpoint."""

from kedro.pipeline import Pipeline, node

from ofa_latency_kedro.pipelines.training.nodes import (
    evaluate_predictors,
    fit_predictors,
    plot_predictors,
    prepare_datasets,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                prepare_datasets,
                ["latency_model_input", "params:training"],
                "prepared",
                name="prepare_datasets",
            ),
            node(
                fit_predictors,
                ["prepared", "params:training", "params:ray"],
                ["fitted", "tuning_trials"],
                name="fit_predictors",
            ),
            node(
                evaluate_predictors,
                ["fitted", "params:training"],
                ["latency_predictors", "predictor_metrics"],
                name="evaluate_predictors",
            ),
            node(
                plot_predictors,
                ["prepared", "fitted"],
                "predictor_plots",
                name="plot_predictors",
            ),
        ],
        namespace="training",
        inputs={"latency_model_input"},
        outputs={"latency_predictors", "predictor_metrics", "predictor_plots", "tuning_trials"},
        parameters={"training", "ray"},
        tags="training",
    )
