"""NAS: regularized evolution under latency budgets with the trained latency predictors and
OFA's accuracy predictor, verified by measurement, exported as OFA net_configs."""

from kedro.pipeline import Pipeline, node

from ofa_latency_kedro.pipelines.nas.nodes import export_subnets, search_subnets, verify_subnets


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                search_subnets,
                ["latency_predictors", "accuracy_predictor", "params:nas"],
                ["nas_candidates", "nas_populations"],
                name="search_subnets",
            ),
            node(
                verify_subnets,
                [
                    "nas_candidates",
                    "latency_predictors",
                    "accuracy_predictor",
                    "raw_latency",
                    "params:nas",
                ],
                ["nas_results", "nas_verification", "verified_latency"],
                name="verify_subnets",
            ),
            node(
                export_subnets,
                ["nas_results", "nas_populations"],
                ["nas_net_configs", "nas_pareto_plot"],
                name="export_subnets",
            ),
        ]
    )
