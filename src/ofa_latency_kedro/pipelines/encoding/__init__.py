"""The encoding pipeline."""

from ofa_latency_kedro.pipelines.encoding.pipeline import create_pipeline

__all__ = ["create_pipeline"]
