"""Finetuning: a trained predictor of other hardware carried to a new device from K measured
subnets; learning curves over K for every adaptation method, and the adapted predictor."""

from kedro.pipeline import Pipeline, node

from ofa_latency_kedro.pipelines.finetuning.nodes import (
    adapt_to_target,
    load_sources,
    report_learning_curves,
    score_learning_curves,
    select_target,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                select_target,
                ["latency_model_input", "params:finetuning"],
                "target",
                name="select_target",
            ),
            node(
                load_sources,
                ["target", "latency_predictors", "params:finetuning"],
                "sources",
                name="load_sources",
            ),
            node(
                score_learning_curves,
                ["target", "sources", "generalized_predictors", "params:finetuning"],
                "curves",
                name="score_learning_curves",
            ),
            node(
                report_learning_curves,
                ["curves", "target", "sources"],
                ["finetuning_curves", "finetuning_plot"],
                name="report_learning_curves",
            ),
            node(
                adapt_to_target,
                ["target", "sources", "params:finetuning"],
                "adapted_predictors",
                name="adapt_to_target",
            ),
        ],
        namespace="finetuning",
        inputs={"latency_model_input", "latency_predictors", "generalized_predictors"},
        outputs={"finetuning_curves", "finetuning_plot", "adapted_predictors"},
        parameters={"finetuning"},
        tags="finetuning",
    )
