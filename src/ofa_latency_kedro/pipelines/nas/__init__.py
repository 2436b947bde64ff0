"""The nas pipeline."""

from ofa_latency_kedro.pipelines.nas.pipeline import create_pipeline

__all__ = ["create_pipeline"]
