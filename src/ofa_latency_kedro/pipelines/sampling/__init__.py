"""Sampling pipeline."""

from ofa_latency_kedro.pipelines.sampling.pipeline import create_pipeline

__all__ = ["create_pipeline"]
