"""NAS: regularized evolution under latency budgets with the trained latency predictors and
OFA's accuracy predictor, verified by measurement, exported as OFA net_configs."""

from kedro.pipeline import Pipeline, node

from ofa_latency_kedro.pipelines.nas.nodes import (
    export_subnets,
    load_predictors,
    search_subnets,
    verify_subnets,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                load_predictors,
                ["latency_predictors", "params:nas"],
                "predictors",
                name="load_predictors",
            ),
            node(
                search_subnets,
                ["predictors", "accuracy_predictor", "params:nas"],
                ["candidates", "populations"],
                name="search_subnets",
            ),
            node(
                verify_subnets,
                [
                    "candidates",
                    "predictors",
                    "accuracy_predictor",
                    "raw_latency",
                    "params:nas",
                ],
                ["nas_results", "nas_verification", "verified_latency"],
                name="verify_subnets",
            ),
            node(
                export_subnets,
                ["nas_results", "populations"],
                ["nas_net_configs", "nas_pareto_plot"],
                name="export_subnets",
            ),
        ],
        namespace="nas",
        inputs={"latency_predictors", "accuracy_predictor", "raw_latency"},
        outputs={
            "nas_results",
            "nas_verification",
            "verified_latency",
            "nas_net_configs",
            "nas_pareto_plot",
        },
        parameters={"nas"},
        tags="nas",
    )
