"""Sampling: choose subnets of a search space to measure."""

from kedro.pipeline import Pipeline, node

from ofa_latency_kedro.pipelines.sampling.nodes import plan_subnets


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                plan_subnets,
                inputs="params:sampling",
                outputs="sampling_plan",
                name="plan_subnets",
            ),
        ]
    )
