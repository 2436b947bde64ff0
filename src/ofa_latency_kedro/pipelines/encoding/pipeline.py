"""Encoding: read every latency CSV of the latency folder (``raw_latency``), validate, merge
repeated measurements and split train/val/test without leaking a subnet across sides."""

from kedro.pipeline import Pipeline, node

from ofa_latency_kedro.pipelines.encoding.nodes import build_model_input


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                build_model_input,
                ["raw_latency", "params:encoding", "params:hardware"],
                ["latency_model_input", "encoding_report"],
                name="build_model_input",
            )
        ]
    )
