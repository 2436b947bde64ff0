"""Encoding: read every latency CSV of the latency folder (``raw_latency``), validate, merge
repeated measurements and split train/val/test without leaking a subnet across sides."""

from kedro.pipeline import Pipeline, node

from ofa_latency_kedro.pipelines.encoding.nodes import (
    merge_repeated_measurements,
    read_latency_files,
    report_encoding,
    split_subnets,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                read_latency_files,
                ["raw_latency", "params:encoding", "params:hardware"],
                ["measurements", "read_report", "hardware_entries"],
                name="read_latency_files",
            ),
            node(
                merge_repeated_measurements,
                ["measurements", "read_report", "params:encoding"],
                ["subnets", "merge_report"],
                name="merge_repeated_measurements",
            ),
            node(
                split_subnets,
                ["subnets", "params:encoding"],
                "latency_model_input",
                name="split_subnets",
            ),
            node(
                report_encoding,
                ["latency_model_input", "merge_report", "hardware_entries", "params:encoding"],
                "encoding_report",
                name="report_encoding",
            ),
        ],
        namespace="encoding",
        inputs={"raw_latency"},
        outputs={"latency_model_input", "encoding_report"},
        parameters={"encoding", "hardware"},
        tags="encoding",
    )
