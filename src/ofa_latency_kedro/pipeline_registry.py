"""Project pipelines."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

#: What a plain ``kedro run`` does: measure, encode, train, search. Generalization and
#: finetuning need several devices' data and run by name.
DEFAULT_PIPELINES = ("sampling", "encoding", "training", "nas")


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines (one per folder of ``pipelines/``).

    ``kedro run --pipelines x`` makes `find_pipelines` load only the pipelines asked for, so
    ``__default__`` is built from whichever of its parts were loaded.
    """
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = sum(
        (pipelines[name] for name in DEFAULT_PIPELINES if name in pipelines), start=Pipeline([])
    )
    return pipelines
