"""Generalization: one latency predictor over every device's dataset, described per device by
reference-subnet latencies or its registry entry, scored leave-one-hardware-out."""

from kedro.pipeline import Pipeline, node

from ofa_latency_kedro.pipelines.generalization.nodes import (
    leave_one_out,
    pick_reference_subnets,
    report_leave_one_out,
    select_devices,
    train_on_every_device,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                select_devices,
                ["latency_model_input", "encoding_report", "params:generalization"],
                ["table", "descriptors"],
                name="select_devices",
            ),
            node(
                leave_one_out,
                ["table", "descriptors", "params:generalization"],
                ["scores", "held_out_models"],
                name="leave_one_out",
            ),
            node(
                train_on_every_device,
                ["table", "descriptors", "held_out_models", "params:generalization"],
                "generalized_predictors",
                name="train_on_every_device",
            ),
            node(
                pick_reference_subnets,
                ["table", "params:generalization"],
                "reference_subnets",
                name="pick_reference_subnets",
            ),
            node(
                report_leave_one_out,
                "scores",
                ["generalization_results", "generalization_plot"],
                name="report_leave_one_out",
            ),
        ],
        namespace="generalization",
        inputs={"latency_model_input", "encoding_report"},
        outputs={
            "generalization_results",
            "generalization_plot",
            "generalized_predictors",
            "reference_subnets",
        },
        parameters={"generalization"},
        tags="generalization",
    )
