"""Finetuning: a trained predictor of other hardware carried to a new device from K measured
subnets; learning curves over K for every adaptation method, and the adapted predictor."""

from kedro.pipeline import Pipeline, node

from ofa_latency_kedro.pipelines.finetuning.nodes import finetuning_curves


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                finetuning_curves,
                [
                    "latency_model_input",
                    "latency_predictors",
                    "generalized_predictors",
                    "params:finetuning",
                ],
                ["finetuning_curves", "finetuning_plot", "adapted_predictors"],
                name="finetuning_curves",
            )
        ]
    )
