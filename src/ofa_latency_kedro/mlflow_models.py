"""Latency predictors as MLflow Models: the ``python_function`` flavor of a `LatencyPredictor`,
their Model Registry entries with the alias ``champion``, and ``models:/`` URIs given as
parameters turned back into predictors.

- `PredictorModel` loads the checkpoint logged with it (`LatencyPredictor.load`) and answers
  a DataFrame with ``child_arch`` (the seed's dict text or JSON, as in a latency CSV),
  optionally ``width_mult`` (missing or empty: the predictor's own width) and, for a
  generalized predictor, ``device`` (one of the datasets it was trained on; missing or
  empty: the predictor as it stands, on the average of its devices), with a
  DataFrame of ``latency_ms`` and, when the predictor carries a calibrated interval,
  ``latency_low_ms`` and ``latency_high_ms`` at the parameter ``level`` (`INTERVAL_LEVEL`).
  Its answers are `LatencyPredictor.predict` and `LatencyPredictor.predict_interval`'s.
- `log_predictor` logs one into an existing run, with a signature, an input example and its
  requirements given (nothing inferred); the model carries the package's code, so it loads
  where the project is not installed.
- `register_predictor` adds a version to the registered model named after the dataset
  (``<hardware>_<space>``), tagged with the predictor's own validation figures, and moves
  ``champion`` by `champion_version`'s rule (stated there and in docs/predictors.md).
- `with_registered_models`: the predictors a parameter names, registered ones by
  ``models:/<name>@<alias>`` or ``models:/<name>/<version>`` included; nodes call it and
  import no MLflow themselves.

Only `ofa_latency_kedro.hooks` (through `ofa_latency_kedro.tracking`) logs and registers.
"""

from __future__ import annotations

import inspect
import math
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import Model, ModelSignature
from mlflow.models.model import ModelInfo
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

from ofa_latency_kedro.errors import LatencyDataError, ParameterError
from ofa_latency_kedro.predictors import LatencyPredictor
from ofa_latency_kedro.predictors.kinds.generalized import GeneralizedKind
from ofa_latency_kedro.search_space import get_space
from ofa_latency_kedro.search_space.table import child_arch_batch

if TYPE_CHECKING:
    from ofa_latency_kedro.datasets import PredictorFolder

#: The artifact key of the checkpoint inside a logged model.
CHECKPOINT = "checkpoint"
#: The alias the registry's best version of a dataset's predictor carries.
CHAMPION = "champion"
#: The level of the interval a served model answers when not asked for another one: the
#: default of `LatencyPredictor.predict_interval`.
INTERVAL_LEVEL: float = (
    inspect.signature(LatencyPredictor.predict_interval).parameters["level"].default
)
#: The distributions a logged predictor needs at load time (pinned to the versions here);
#: the package itself travels as code with the model.
REQUIREMENTS = (
    "mlflow",
    "torch",
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "pyyaml",
    "tqdm",
)
#: Subnets in a logged model's input example.
EXAMPLE_ROWS = 3
#: The output columns: the prediction, and the interval's bounds when there is one.
LATENCY, LOW, HIGH = "latency_ms", "latency_low_ms", "latency_high_ms"

_PACKAGE = Path(__file__).resolve().parent
_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))$")


# -- the pyfunc flavor ------------------------------------------------------------------------
class PredictorModel(mlflow.pyfunc.PythonModel):
    """A `LatencyPredictor` behind MLflow's ``predict`` (`predict_frame`)."""

    def load_context(self, context: Any) -> None:
        self.predictor = LatencyPredictor.load(context.artifacts[CHECKPOINT])

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        level = (params or {}).get("level")
        return predict_frame(
            self.predictor, model_input, INTERVAL_LEVEL if level is None else float(level)
        )


def has_intervals(predictor: LatencyPredictor) -> bool:
    """Whether its answers carry a calibrated interval (a generalized predictor: on at least
    one of its devices)."""
    return predictor.metadata.conformal is not None or (
        _by_device(predictor) and bool(predictor.metadata.device_conformal)
    )


def _by_device(predictor: LatencyPredictor) -> bool:
    """A generalized predictor answers on any of its training devices (``device``)."""
    return predictor.kind == GeneralizedKind.name and bool(predictor.devices)


def predict_frame(
    predictor: LatencyPredictor, frame: Any, level: float = INTERVAL_LEVEL
) -> pd.DataFrame:
    """Latency in ms (and the ``level`` interval, when the predictor has one) of every row
    of ``frame``, in its order: what a logged model answers. A bound is None where the
    predictor has no bounded interval at that level."""
    if not isinstance(frame, pd.DataFrame) or "child_arch" not in frame.columns:
        columns = list(frame.columns) if isinstance(frame, pd.DataFrame) else type(frame).__name__
        raise LatencyDataError(
            f"a latency predictor's model input is a table with a 'child_arch' column "
            f"(optionally 'width_mult'), got {columns}"
        )
    frame = frame.reset_index(drop=True)
    intervals = has_intervals(predictor)
    out = pd.DataFrame({LATENCY: np.full(len(frame), np.nan)})
    if intervals:
        out[LOW] = np.nan
        out[HIGH] = np.nan
    for rows, placed in _placements(predictor, frame):
        part = frame.iloc[rows]
        width = part["width_mult"] if "width_mult" in part.columns else None
        chosen = pd.DataFrame(
            {
                "child_arch": part["child_arch"].to_numpy(),
                "width_mult": (
                    np.full(len(part), placed.width_mult, dtype=object)
                    if width is None
                    else width.astype(object).where(width.notna(), placed.width_mult).to_numpy()
                ),
            }
        )
        batch = child_arch_batch(chosen)
        out.loc[rows, LATENCY] = placed.predict_batch(batch)
        if intervals and placed.metadata.conformal is not None:
            low, high = placed.predict_interval(batch, level)
            out.loc[rows, LOW] = low
            out.loc[rows, HIGH] = high
    if intervals:
        for column in (LOW, HIGH):
            out[column] = _null_where_unbounded(out[column])
    return out


def _null_where_unbounded(bounds: pd.Series) -> pd.Series:
    """A bound column as it is where every bound is finite; else None where a bound is
    infinite or missing (too few calibration residuals for the level, a device without
    interval calibration): the scoring server writes None as JSON's null, while infinity and
    NaN would make its answer invalid JSON."""
    values = bounds.to_numpy(dtype=float)
    if np.isfinite(values).all():
        return bounds
    return pd.Series(
        [float(value) if np.isfinite(value) else None for value in values],
        index=bounds.index,
        dtype=object,
    )


def _placements(
    predictor: LatencyPredictor, frame: pd.DataFrame
) -> list[tuple[np.ndarray, LatencyPredictor]]:
    """The rows each predictor answers: all of them, or for a generalized predictor those of
    each ``device`` placed on it (`LatencyPredictor.for_device`) and those without one as it
    stands (its own embedding: the average of its devices)."""
    if not _by_device(predictor) or "device" not in frame.columns:
        return [(np.arange(len(frame)), predictor)]
    devices = frame["device"].astype(object).where(frame["device"].notna(), "").to_numpy()
    return [
        (np.flatnonzero(devices == device), predictor.for_device(device) if device else predictor)
        for device in pd.unique(devices)
    ]


def signature(predictor: LatencyPredictor) -> ModelSignature:
    """Input ``child_arch`` (text), optional ``width_mult``, ``device`` for a generalized
    predictor; output ``latency_ms`` (and the interval's bounds); parameter ``level``."""
    inputs = [ColSpec("string", "child_arch"), ColSpec("double", "width_mult", required=False)]
    if _by_device(predictor):
        inputs.append(ColSpec("string", "device", required=False))
    outputs = [ColSpec("double", LATENCY)]
    params = None
    if has_intervals(predictor):
        outputs += [ColSpec("double", LOW), ColSpec("double", HIGH)]
        params = ParamSchema([ParamSpec("level", "double", INTERVAL_LEVEL)])
    return ModelSignature(Schema(inputs), Schema(outputs), params)


def input_example(predictor: LatencyPredictor, rows: int = EXAMPLE_ROWS) -> pd.DataFrame:
    """A few subnets of the predictor's space, at its width and resolutions, the way a
    latency CSV holds them (a generalized predictor's: on its first device)."""
    placed = predictor.for_device(predictor.devices[0]) if _by_device(predictor) else predictor
    width = float(placed.width_mult or 1.0)
    space = get_space(
        placed.space or "ofa", resolutions=placed.resolutions or "seed", width_mult=width
    )
    example = pd.DataFrame(
        {
            "child_arch": [arch.to_seed_string() for arch in space.sample(rows, seed=0)],
            "width_mult": width,
        }
    )
    if _by_device(predictor):
        example["device"] = predictor.devices[0]
    return example


def requirements() -> list[str]:
    """`REQUIREMENTS` pinned to the versions installed (one not installed: unpinned)."""
    pinned = []
    for name in REQUIREMENTS:
        try:
            pinned.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            pinned.append(name)
    return pinned


def log_predictor(
    run_id: str, name: str, predictor: LatencyPredictor, checkpoint: Path
) -> ModelInfo:
    """Log ``predictor`` (saved at ``checkpoint``) as the MLflow Model ``name`` of the run
    ``run_id``; the run itself stays as it is (not made active, not ended)."""
    return Model.log(
        artifact_path=None,
        name=name,
        flavor=mlflow.pyfunc,
        run_id=run_id,
        python_model=str(_PACKAGE / "mlflow_model_code.py"),
        artifacts={CHECKPOINT: str(checkpoint)},
        code_paths=[str(_PACKAGE)],
        pip_requirements=requirements(),
        signature=signature(predictor),
        input_example=input_example(predictor),
        tags={"hardware": str(predictor.hardware), "space": str(predictor.space)},
    )


# -- the Model Registry -----------------------------------------------------------------------
#: Model-version tags the champion rule reads: the predictor's own validation MAPE (%), and
#: the rows of each split it was trained, validated and tested on.
VAL_MAPE_TAG = "val_mape_pct"
ROWS_TAG = "rows_train_val_test"


@dataclass(frozen=True)
class VersionRecord:
    """What `champion_version` reads of a registered version."""

    version: int
    val_mape: float | None
    rows: str | None

    @classmethod
    def of(cls, version: Any) -> VersionRecord:
        """The record of an MLflow ``ModelVersion`` (its tags; a bad or missing MAPE: None)."""
        try:
            mape: float | None = float(version.tags.get(VAL_MAPE_TAG))
        except (TypeError, ValueError):
            mape = None
        if mape is not None and not math.isfinite(mape):
            mape = None
        return cls(int(version.version), mape, version.tags.get(ROWS_TAG))


def champion_version(versions: Sequence[VersionRecord]) -> int | None:
    """The version that carries ``champion``: the lowest validation MAPE among the versions
    validated on the same rows as the newest version that has a validation MAPE (same row
    count in each of train, val and test: MAPEs on other validation rows do not compare,
    and a dataset only grows, so the newest rows are the ones that count); on a tie, the
    newer version. A version without a validation MAPE never carries it; None: no version
    has one."""
    eligible = [v for v in versions if v.val_mape is not None]
    if not eligible:
        return None
    newest = max(eligible, key=lambda v: v.version)
    rivals = [v for v in eligible if v.rows == newest.rows]
    return min(rivals, key=lambda v: (v.val_mape, -v.version)).version


def version_tags(predictor: LatencyPredictor) -> dict[str, str]:
    """The tags of a registered version: what it predicts, and the figures the champion rule
    reads (from the predictor's own metrics, whatever the run's metric names)."""
    rows = predictor.metadata.training.get("rows") or {}
    tags = {
        "hardware": str(predictor.hardware),
        "space": str(predictor.space),
        "kind": predictor.kind,
        "encoder": predictor.encoder_name,
        ROWS_TAG: "/".join(str(rows.get(split, 0)) for split in ("train", "val", "test")),
    }
    for split in ("val", "test"):
        mape = (predictor.metrics.get(split) or {}).get("mape")
        if isinstance(mape, (int, float)) and math.isfinite(mape):
            tags[f"{split}_mape_pct"] = repr(float(mape))
    return tags


def register_predictor(
    run_id: str, name: str, predictor: LatencyPredictor, model: ModelInfo
) -> Any:
    """A new version of the registered model ``name`` from the logged ``model``, tagged
    (`version_tags`); ``champion`` set again by `champion_version`. Returns the version."""
    client = mlflow.MlflowClient()
    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if not _missing(exc):
            raise
        client.create_registered_model(
            name,
            description=(
                f"Latency predictor of {predictor.hardware} ({predictor.space} space), one "
                f"version per training; alias '{CHAMPION}': the lowest validation MAPE "
                "(docs/predictors.md)"
            ),
        )
    created = client.create_model_version(
        name,
        source=f"models:/{model.model_id}",
        run_id=run_id,
        tags=version_tags(predictor),
        model_id=model.model_id,
    )
    update_champion(client, name)
    return created


def update_champion(client: mlflow.MlflowClient, name: str) -> int | None:
    """Point ``champion`` of ``name`` at `champion_version` of its versions (left as it is
    when no version has a validation MAPE)."""
    versions = client.search_model_versions(f"name = '{name}'")
    chosen = champion_version([VersionRecord.of(v) for v in versions])
    if chosen is not None:
        client.set_registered_model_alias(name, CHAMPION, str(chosen))
    return chosen


def _missing(error: MlflowException) -> bool:
    """Whether MLflow says the model, version or alias asked for does not exist."""
    return error.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST)


# -- models:/ URIs as parameters --------------------------------------------------------------
def is_model_uri(value: str) -> bool:
    return value.startswith("models:/")


def load_registered_predictor(uri: str, parameter: str) -> LatencyPredictor:
    """The `LatencyPredictor` of a registered version, ``models:/<name>@<alias>`` or
    ``models:/<name>/<version>``: its checkpoint downloaded and loaded. A URI of another
    form, a model, alias or version the registry does not hold, or a model that is not a
    latency predictor: a `ParameterError` naming ``parameter`` and the URI."""
    match = _URI.match(uri)
    if match is None:
        raise ParameterError(
            parameter,
            f"names {uri!r}, which is not models:/<name>@<alias> or models:/<name>/<version>",
        )
    client = mlflow.MlflowClient()
    name = match["name"]
    try:
        registered = client.get_registered_model(name)
    except MlflowException as exc:
        if not _missing(exc):
            raise
        known = sorted(m.name for m in client.search_registered_models())
        raise ParameterError(
            parameter,
            f"names {uri}, but the Model Registry at {mlflow.get_registry_uri()} has no model "
            f"{name!r} (it has {', '.join(known) or 'none'}; the training pipeline registers "
            "each predictor as <hardware>_<space>)",
        ) from None
    alias, number = match["alias"], match["version"]
    found = None
    if alias is None or alias in registered.aliases:
        try:
            found = client.get_model_version(name, registered.aliases[alias] if alias else number)
        except MlflowException as exc:
            if not _missing(exc):
                raise
    if found is None:
        versions = sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
        raise ParameterError(
            parameter,
            f"names {uri}, but model {name!r} has no "
            + (f"alias {alias!r}" if alias else f"version {number}")
            + f" (aliases: {', '.join(sorted(registered.aliases)) or 'none'}; versions: "
            f"{', '.join(map(str, versions)) or 'none'})",
        )
    predictor = _download_predictor(found, uri, parameter)
    if predictor.hardware is None:
        raise ParameterError(
            parameter,
            f"names {uri}, a generalized predictor of no one device; register it placed on "
            "one (LatencyPredictor.for_device)",
        )
    return predictor


def _download_predictor(found: Any, uri: str, parameter: str) -> LatencyPredictor:
    """The checkpoint artifact of a registered version's logged model, loaded."""
    info = mlflow.models.get_model_info(found.source)
    checkpoint = ((info.flavors.get("python_function") or {}).get("artifacts") or {}).get(
        CHECKPOINT
    )
    if checkpoint is None or not info.model_id:
        raise ParameterError(
            parameter,
            f"names {uri}, which is not a latency predictor logged by this project (its model "
            f"has no {CHECKPOINT!r} artifact)",
        )
    location = mlflow.MlflowClient().get_logged_model(info.model_id).artifact_location
    with tempfile.TemporaryDirectory() as folder:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{location.rstrip('/')}/{checkpoint['path']}", dst_path=folder
        )
        return LatencyPredictor.load(local)


def with_registered_models(
    predictors: PredictorFolder, wanted: str | Sequence[str], parameter: str
) -> tuple[PredictorFolder, str | tuple[str, ...]]:
    """``predictors`` (a `PredictorFolder`) and ``wanted`` as a pipeline reads them when
    ``wanted`` names registered models: each ``models:/`` URI loaded now, taking the place
    of the folder's checkpoint of the dataset it predicts (``<hardware>_<space>``), and
    named by that dataset in ``wanted``. Without URIs, both as given."""
    if isinstance(wanted, str) or not any(is_model_uri(name) for name in wanted):
        return predictors, wanted
    loaders: dict[str, Callable[[], LatencyPredictor]] = {}
    names = []
    for name in wanted:
        if not is_model_uri(name):
            names.append(name)
            continue
        predictor = load_registered_predictor(name, parameter)
        dataset = f"{predictor.hardware}_{predictor.space}"
        if dataset in names or dataset in wanted:
            raise ParameterError(
                parameter,
                f"names two predictors of {dataset}: {name} and "
                f"{dataset if dataset in wanted else 'another models:/ URI'}",
            )
        loaders[dataset] = lambda chosen=predictor: chosen
        names.append(dataset)
    return predictors.including(loaders), tuple(names)
