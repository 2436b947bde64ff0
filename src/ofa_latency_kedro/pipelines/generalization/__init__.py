"""The generalization pipeline."""

from ofa_latency_kedro.pipelines.generalization.pipeline import create_pipeline

__all__ = ["create_pipeline"]
