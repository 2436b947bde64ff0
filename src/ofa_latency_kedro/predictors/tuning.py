"""Ray Tune search of the default predictor's hyper-parameters (ASHA early stopping).

Each trial trains on the same prepared data (shipped once through Ray's object store), reports
the validation MAE every epoch, and saves its best state as a checkpoint at the end; the
predictor of the trial with the lowest validation MAE is returned. Failed trials either stop
the search with their error or, with ``on_trial_error: continue``, are reported and skipped.
"""

from __future__ import annotations

import logging
import re
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from ofa_latency_kedro.errors import OfaLatencyError, ParameterError
from ofa_latency_kedro.measurement.measurers import check_ray_reachable
from ofa_latency_kedro.measurement.protocol import available_cpus
from ofa_latency_kedro.predictors.config import TrainingConfig
from ofa_latency_kedro.predictors.data import PreparedData
from ofa_latency_kedro.predictors.predictor import LatencyPredictor
from ofa_latency_kedro.predictors.training import fit_prepared
from ofa_latency_kedro.settings_dict import from_settings

logger = logging.getLogger(__name__)
#: Seconds to wait for a TCP answer from a Ray address before saying it is unreachable.
CONNECT_TIMEOUT_S = 10.0

#: name: (distribution, arguments); distributions: loguniform (low, high), choice (values,
#: sampled) or grid (values, every one tried in each of num_samples repeats).
DEFAULT_SEARCH_SPACE: dict[str, tuple[str, Any]] = {
    "lr": ("loguniform", (3e-4, 1e-2)),
    "weight_decay": ("loguniform", (1e-6, 1e-2)),
    "hidden": ("choice", (128, 256, 512)),
    "depth": ("choice", (1, 2, 3, 4)),
    "batch_size": ("choice", (64, 128, 256, 512)),
    "epochs": ("choice", (100, 200, 300)),
}
DISTRIBUTIONS = ("loguniform", "choice", "grid")


class TuningError(OfaLatencyError, RuntimeError):
    """The search could not run, or a trial failed (its error is in the message)."""


@dataclass(frozen=True)
class TuneSettings:
    """A Ray Tune search of the default predictor's hyper-parameters (``training.tune``):
    ``num_samples`` trials drawn from ``search_space`` (a `TrainingConfig` field name:
    [distribution, arguments]), stopped early by ASHA after ``grace_period`` epochs, within
    ``time_budget_s``; trial checkpoints under ``storage_path`` (None: a temporary folder).
    A ``search_space`` given replaces the default one (`DEFAULT_SEARCH_SPACE`) as a whole.
    ``enabled`` says whether the training pipeline tunes at all."""

    enabled: bool = False
    num_samples: int = 16
    time_budget_s: float | None = 600.0
    grace_period: int = 10
    reduction_factor: int = 3
    cpus_per_trial: int = 1
    storage_path: str | None = None
    on_trial_error: Literal["raise", "continue"] = "raise"
    seed: int = 0
    search_space: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULT_SEARCH_SPACE))

    def __post_init__(self) -> None:
        if self.on_trial_error not in ("raise", "continue"):
            raise ParameterError(
                "on_trial_error", f"must be one of raise, continue, got {self.on_trial_error!r}"
            )
        for name in ("num_samples", "cpus_per_trial", "grace_period", "reduction_factor"):
            if getattr(self, name) < 1:
                raise ParameterError(name, f"must be at least 1, got {getattr(self, name)!r}")
        known = {f for f in TrainingConfig.__dataclass_fields__}
        for name, entry in self.search_space.items():
            if name not in known:
                raise ParameterError(
                    f"search_space.{name}",
                    f"is not a training setting (known: {', '.join(sorted(known))})",
                )
            if (
                not isinstance(entry, (list, tuple))
                or len(entry) != 2
                or entry[0] not in DISTRIBUTIONS
            ):
                raise ParameterError(
                    f"search_space.{name}",
                    f"must be [distribution, arguments] with a distribution of "
                    f"{', '.join(DISTRIBUTIONS)}, got {entry!r}",
                )

    @classmethod
    def from_dict(
        cls, values: Mapping[str, Any] | TuneSettings | None, what: str = "training.tune"
    ) -> TuneSettings:
        return from_settings(cls, values, what)


@dataclass
class TuneOutcome:
    predictor: LatencyPredictor
    best_config: dict[str, Any]
    trials: pd.DataFrame
    errors: list[str]
    seconds: float


def _param_space(search_space: Mapping[str, Any]) -> dict[str, Any]:
    from ray import tune  # noqa: PLC0415

    distributions = {
        "loguniform": lambda arguments: tune.loguniform(*arguments),
        "choice": lambda arguments: tune.choice(list(arguments)),
        "grid": lambda arguments: tune.grid_search(list(arguments)),
    }
    return {
        name: distributions[kind](arguments) for name, (kind, arguments) in search_space.items()
    }


def tune_trial(config: dict[str, Any], data: PreparedData, base: Mapping[str, Any]) -> None:
    """Ray Tune trial body: train, report every epoch, checkpoint the best state at the end."""
    from ray import tune  # noqa: PLC0415

    settings = TrainingConfig.from_dict({**base, **config}, "trial")
    predictor = fit_prepared(data, settings, on_epoch=tune.report)
    final = predictor.metrics["val"]
    with tempfile.TemporaryDirectory() as folder:
        predictor.save(Path(folder) / "predictor.pt")
        tune.report(
            {"val_mae": final["mae"], "val_mape": final["mape"], "final": 1},
            checkpoint=tune.Checkpoint.from_directory(folder),
        )


@contextmanager
def ray_session(address: str | None = None) -> Iterator[None]:
    """Ray for the duration of a block: joined at ``address`` (``auto``, ``host:port``,
    ``ray://host:port``) or started locally with this machine's CPUs, and shut down after
    unless it was running before."""
    started = _connect(address)
    try:
        yield
    finally:
        if started:
            import ray  # noqa: PLC0415

            ray.shutdown()


def _connect(address: str | None) -> bool:
    """Start or join Ray; True when this call started it (and so should shut it down)."""
    import ray  # noqa: PLC0415

    if ray.is_initialized():
        return False
    quiet = {"logging_level": logging.WARNING, "log_to_driver": False}
    try:
        if address:
            check_ray_reachable(address, CONNECT_TIMEOUT_S)  # ray.init may wait for minutes
            ray.init(address=address, **quiet)
        else:
            try:
                ray.init(num_cpus=available_cpus(), include_dashboard=False, **quiet)
            except ValueError as exc:
                if "existing cluster" not in str(exc):
                    raise
                # `ray start --head` left a cluster running here: ray.init() joins it
                logger.info("Joining the Ray cluster already running on this machine")
                ray.init(address="auto", **quiet)
    except Exception as exc:
        raise TuningError(
            f"cannot start or reach Ray at {address or 'a local cluster'}: {exc}"
        ) from exc
    return True


def tune_predictor(
    data: PreparedData,
    settings: TuneSettings | Mapping[str, Any] | None = None,
    base_config: TrainingConfig | Mapping[str, Any] | None = None,
    *,
    address: str | None = None,
    experiment: str = "latency_predictor",
) -> TuneOutcome:
    """Search hyper-parameters with Ray Tune + ASHA (on the Ray cluster at ``address``, or a
    local one) and return the best trial's predictor."""
    from ray import tune  # noqa: PLC0415
    from ray.tune.schedulers import ASHAScheduler  # noqa: PLC0415
    from ray.tune.search import BasicVariantGenerator  # noqa: PLC0415

    settings = TuneSettings.from_dict(settings)
    base = {**TrainingConfig.from_dict(base_config).to_dict(), "threads": settings.cpus_per_trial}
    space = dict(settings.search_space)
    max_epochs = max(space["epochs"][1]) if "epochs" in space else base["epochs"]
    storage = Path(settings.storage_path or tempfile.mkdtemp(prefix="ray_tune_")).resolve()
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    with ray_session(address):
        tuner = tune.Tuner(
            tune.with_resources(
                tune.with_parameters(tune_trial, data=data, base=base),
                {"cpu": settings.cpus_per_trial},
            ),
            param_space=_param_space(space),
            tune_config=tune.TuneConfig(
                metric="val_mae",
                mode="min",
                num_samples=settings.num_samples,
                time_budget_s=settings.time_budget_s,
                scheduler=ASHAScheduler(
                    max_t=max_epochs + 1,
                    grace_period=min(settings.grace_period, max_epochs + 1),
                    reduction_factor=settings.reduction_factor,
                ),
                search_alg=BasicVariantGenerator(random_state=settings.seed),
            ),
            run_config=tune.RunConfig(
                name=f"{experiment}_{int(time.time())}",
                storage_path=str(storage),
                verbose=0,
            ),
        )
        grid = tuner.fit()
        return _collect(grid, settings, space, started_at, time.perf_counter() - started)


def trial_error_message(error: BaseException) -> str:
    """The trial's own exception (Ray wraps it in a RayTaskError with a remote traceback)."""
    cause = getattr(error, "cause", None) or error
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(cause)).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1] if text else ''}"


def _collect(
    grid: Any,
    settings: TuneSettings,
    space: Mapping[str, Any],
    started_at: datetime,
    seconds: float,
) -> TuneOutcome:
    rows, errors, finished = [], [], []
    for result in grid:
        config = {name: result.config.get(name) for name in space}
        history = result.metrics_dataframe
        best_mae = (
            float(history["val_mae"].min())
            if history is not None and "val_mae" in history
            else np.nan
        )
        status = "error" if result.error else ("completed" if result.checkpoint else "stopped")
        message = None
        if result.error:
            message = trial_error_message(result.error)
            errors.append(message)
        elif result.checkpoint:
            finished.append(result)
        rows.append(
            {
                "trial": Path(result.path).name,
                **config,
                "status": status,
                "epochs": int(history["epoch"].max())
                if history is not None and "epoch" in history and history["epoch"].notna().any()
                else 0,
                "val_mae": best_mae,
                "val_mape": float(history["val_mape"].min())
                if history is not None and "val_mape" in history
                else np.nan,
                "error": message,
            }
        )
    trials = pd.DataFrame(rows).sort_values("val_mae", na_position="last").reset_index(drop=True)
    if errors and settings.on_trial_error == "raise":
        raise TuningError(
            f"{len(errors)} of {len(rows)} Ray Tune trials failed; the first: {errors[0]}"
        )
    for message in errors:
        logger.warning("A Ray Tune trial failed and was skipped: %s", message)
    if not finished:
        raise TuningError(
            f"no Ray Tune trial finished ({len(rows)} run, {len(errors)} failed); raise "
            "training.tune.time_budget_s or num_samples"
        )
    best = min(finished, key=lambda r: r.metrics["val_mae"])
    with best.checkpoint.as_directory() as folder:
        predictor = LatencyPredictor.load(Path(folder) / "predictor.pt")
    best_config = {name: best.config.get(name) for name in space}
    predictor = predictor.replace(
        training={
            **predictor.metadata.training,
            "tuning": {
                "trials": len(rows),
                "completed": len(finished),
                "failed": len(errors),
                "started_at": started_at.isoformat(timespec="milliseconds"),
                "seconds": round(seconds, 1),
                "best_config": best_config,
            },
        }
    )
    logger.info(
        "Ray Tune: %d trials (%d completed, %d stopped early by ASHA, %d failed) in %.0f s; best "
        "validation MAE %.4f ms with %s",
        len(rows),
        len(finished),
        len(rows) - len(finished) - len(errors),
        len(errors),
        seconds,
        best.metrics["val_mae"],
        best_config,
    )
    return TuneOutcome(predictor, best_config, trials, errors, seconds)
