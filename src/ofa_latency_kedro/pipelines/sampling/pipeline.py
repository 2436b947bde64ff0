"""Sampling: choose subnets of a search space and measure their latency into
``<hardware>_<space>.csv`` of the latency folder (``raw_latency``; append-only, resumable)."""

from kedro.pipeline import Pipeline, node

from ofa_latency_kedro.pipelines.sampling.nodes import (
    measure_subnets,
    plan_subnets,
    report_sampling,
    resolve_sampling_target,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                resolve_sampling_target,
                "params:sampling",
                "target",
                name="resolve_sampling_target",
            ),
            node(
                plan_subnets,
                ["params:sampling", "measured_so_far", "target"],
                "sampling_plan",
                name="plan_subnets",
            ),
            node(
                measure_subnets,
                ["sampling_plan", "measured_so_far", "target", "params:sampling"],
                "raw_latency",
                name="measure_subnets",
            ),
            node(
                report_sampling,
                ["raw_latency", "target"],
                "sampling_report",
                name="report_sampling",
            ),
        ],
        namespace="sampling",
        inputs={"measured_so_far"},
        outputs={"sampling_plan", "raw_latency", "sampling_report"},
        parameters={"sampling"},
        tags="sampling",
    )
