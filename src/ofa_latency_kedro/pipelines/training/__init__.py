"""The training pipeline."""

from ofa_latency_kedro.pipelines.training.pipeline import create_pipeline

__all__ = ["create_pipeline"]
