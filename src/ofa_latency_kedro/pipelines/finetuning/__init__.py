"""The finetuning pipeline."""

from ofa_latency_kedro.pipelines.finetuning.pipeline import create_pipeline

__all__ = ["create_pipeline"]
