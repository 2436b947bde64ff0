"""Generalization: one latency predictor over every device's dataset, described per device by
reference-subnet latencies or its registry entry, scored leave-one-hardware-out."""

from kedro.pipeline import Pipeline, node

from ofa_latency_kedro.pipelines.generalization.nodes import generalize


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                generalize,
                ["latency_model_input", "encoding_report", "params:generalization"],
                [
                    "generalization_results",
                    "generalization_plot",
                    "generalized_predictors",
                    "reference_subnets",
                ],
                name="generalize",
            )
        ]
    )
