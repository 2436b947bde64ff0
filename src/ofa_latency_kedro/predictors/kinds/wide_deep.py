"""``wide_deep``, the default predictor (`WideDeep`): a wide part fitted by ridge regression
(on the standardised ``analytic`` features, then its residual on the ``joint`` encoding; each
penalty chosen on the validation rows), then wide and deep parts trained together with AdamW
on the relative squared error, a cosine learning-rate schedule and early stopping on the
validation MAE. When the wide fit alone is already exact on the validation rows (a
lookup-table device), or ``depth`` is 0, the deep part is left out.

Between two trained resolutions the wide part is interpolated linearly; outside the trained
range it refuses to predict."""

from __future__ import annotations

import logging
import warnings
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.linalg
import scipy.sparse
import torch
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_absolute_percentage_error

from ofa_latency_kedro.encoding.encoders import Encoder, joint_indices, joint_width
from ofa_latency_kedro.predictors.fitting import train_module
from ofa_latency_kedro.predictors.kinds.base import (
    EpochCallback,
    Fitted,
    PredictorKind,
    tensors,
    validation_scores,
)
from ofa_latency_kedro.predictors.metadata import PredictorError, PredictorMetadata
from ofa_latency_kedro.predictors.models import WideDeep
from ofa_latency_kedro.search_space import ArchBatch

if TYPE_CHECKING:
    from ofa_latency_kedro.predictors.config import TrainingConfig
    from ofa_latency_kedro.predictors.data import PreparedData, SplitData

logger = logging.getLogger(__name__)

DEEP_ENCODER = "analytic"
#: Ridge penalties tried for the wide part; the one with the best validation MAPE is kept.
RIDGE_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
#: Validation MAPE (%) under which the wide fit counts as exact and the deep part is skipped.
EXACT_MAPE = 0.01
NORMALIZATION = (
    "deep inputs standardised by training mean and std (deep_mean, deep_std); deep output "
    "scaled by deep_scale"
)


def _relative_mse(predicted: torch.Tensor, latency: torch.Tensor) -> torch.Tensor:
    return torch.mean(((predicted - latency) / latency) ** 2)


def _joint_onehot(index: np.ndarray, n_wide: int) -> scipy.sparse.csr_matrix:
    """The ``joint`` one-hot matrix of `joint_indices` rows, sparse (21 ones per row)."""
    rows, columns = np.nonzero(index >= 0)
    return scipy.sparse.csr_matrix(
        (np.ones(len(rows)), (rows, index[rows, columns])), shape=(len(index), n_wide)
    )


def _best_ridge(
    train_x: np.ndarray | scipy.sparse.csr_matrix,
    train_y: np.ndarray,
    val_x: np.ndarray | scipy.sparse.csr_matrix,
    val_prior: np.ndarray | float,
    val_latency: np.ndarray,
    **options: Any,
) -> Ridge:
    """scikit-learn's ridge regression at every penalty of `RIDGE_GRID`; the one whose
    validation prediction (plus ``val_prior``) has the lowest MAPE. The analytic features
    are collinear by construction (stage sums and totals of the block figures), so SciPy's
    solver warns at the smallest penalties; the penalty makes the system solvable, and the
    validation rows choose it."""
    best, best_error = None, np.inf
    for penalty in RIDGE_GRID:
        model = Ridge(alpha=penalty, **options)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
            model.fit(train_x, train_y)
        error = mean_absolute_percentage_error(val_latency, val_prior + model.predict(val_x))
        if error < best_error:
            best, best_error = model, error
    return best


def fit_wide(
    train: SplitData, val: SplitData, n_wide: int, mean: np.ndarray, std: np.ndarray
) -> tuple[np.ndarray, float, np.ndarray]:
    """The wide part by two ridge regressions (scikit-learn's), each penalty chosen on the
    validation rows: latency on the standardised analytic features (weights, intercept),
    then the residual on the joint one-hots (the table)."""
    train_index, train_deep = train.inputs
    val_index, val_deep = val.inputs
    features = (train_deep - mean) / std
    val_features = (val_deep - mean) / std
    linear = _best_ridge(features, train.latency, val_features, 0.0, val.latency, solver="cholesky")
    val_prior = linear.predict(val_features)
    table = _best_ridge(
        _joint_onehot(train_index, n_wide),
        train.latency - linear.predict(features),
        _joint_onehot(val_index, n_wide),
        val_prior,
        val.latency,
        fit_intercept=False,
        solver="sparse_cg",  # conjugate gradients on the sparse one-hots, to 1e-10
        tol=1e-10,
        max_iter=10_000,
    )
    return linear.coef_, float(linear.intercept_), table.coef_


class WideDeepKind(PredictorKind):
    name: ClassVar[str] = "wide_deep"

    @classmethod
    def build(cls, metadata: PredictorMetadata) -> WideDeep:
        shape = metadata.architecture
        return WideDeep(shape["n_wide"], shape["deep_features"], shape["hidden"], shape["depth"])

    @classmethod
    def resolutions(cls, metadata: PredictorMetadata) -> tuple[int, ...]:
        return metadata.encoders["wide"].resolutions

    @classmethod
    def module_inputs(
        cls, metadata: PredictorMetadata, batch: ArchBatch, hardware: np.ndarray | None = None
    ) -> tuple[torch.Tensor, ...]:
        resolutions = cls.resolutions(metadata)
        try:
            index = joint_indices(batch, resolutions)
        except ValueError as exc:
            raise PredictorError(
                f"the module's inputs need subnets at its trained resolutions "
                f"{', '.join(map(str, resolutions))}: {exc}"
            ) from None
        return tensors((index, metadata.encoders["deep"].encode(batch)))

    @classmethod
    def predict_chunk(
        cls,
        module: torch.nn.Module,
        metadata: PredictorMetadata,
        batch: ArchBatch,
        hardware: np.ndarray | None = None,
    ) -> np.ndarray:
        deep = torch.from_numpy(metadata.encoders["deep"].encode(batch))
        return module.deep_part(deep).double().numpy() + cls._wide(module, metadata, batch)

    @classmethod
    def _wide(cls, module: WideDeep, metadata: PredictorMetadata, batch: ArchBatch) -> np.ndarray:
        """The wide part; between two trained resolutions it is interpolated linearly."""
        resolutions = np.asarray(cls.resolutions(metadata))
        r = batch.r.astype(np.int64)
        outside = (r < resolutions[0]) | (r > resolutions[-1])
        if np.any(outside):
            raise PredictorError(
                f"this predictor was trained at resolutions {resolutions[0]}..{resolutions[-1]}; "
                f"it cannot predict resolution {int(r[np.argmax(outside)])}"
            )
        upper_index = np.searchsorted(resolutions, r)
        exact = resolutions[upper_index] == r
        lower = np.where(exact, r, resolutions[np.maximum(upper_index - 1, 0)])
        upper = resolutions[upper_index]
        weight = np.where(exact, 1.0, (r - lower) / np.maximum(upper - lower, 1))

        def wide_at(resolution: np.ndarray) -> np.ndarray:
            shifted = ArchBatch(batch.ks, batch.e, batch.d, resolution, batch.width_mult)
            index = torch.from_numpy(joint_indices(shifted, resolutions))
            return module.wide(index).double().numpy()

        at_upper = wide_at(upper)
        if np.all(exact):
            return at_upper
        return weight * at_upper + (1 - weight) * wide_at(lower)

    @classmethod
    def training_inputs(
        cls, batch: ArchBatch, resolutions: tuple[int, ...]
    ) -> tuple[np.ndarray, ...] | None:
        if not set(np.unique(batch.r).tolist()) <= set(resolutions):
            return None
        return joint_indices(batch, resolutions), Encoder(DEEP_ENCODER).encode(batch)

    @classmethod
    def fit(
        cls, data: PreparedData, config: TrainingConfig, on_epoch: EpochCallback | None
    ) -> Fitted:
        n_wide = joint_width(len(data.resolutions))
        train, val = data.train, data.val
        if val.inputs is None:
            raise PredictorError(
                f"validation rows use resolutions outside the training rows' {data.resolutions}; "
                "split so that every resolution is trained"
            )
        train_deep = train.inputs[1]
        module = WideDeep(n_wide, train_deep.shape[1], config.hidden, config.depth)
        mean = train_deep.mean(axis=0).astype(np.float64)
        std = train_deep.std(axis=0).astype(np.float64) + 1e-6
        weights, intercept, table = fit_wide(train, val, n_wide, mean, std)
        with torch.no_grad():
            module.table.copy_(torch.from_numpy(table))
            module.linear.weight.copy_(torch.from_numpy(weights)[None, :])
            module.linear.bias.fill_(intercept)
            module.deep_mean.copy_(torch.from_numpy(mean))
            module.deep_std.copy_(torch.from_numpy(std))
            module.deep_scale.fill_(float(np.std(train.latency)) or 1.0)
        val_inputs = tensors(val.inputs)

        def validate() -> dict[str, float]:
            return validation_scores(module(*val_inputs).double().numpy(), val.latency)

        module.eval()
        with torch.no_grad():
            wide_only = validate()
        history: dict[str, list[float]] = {"train_loss": [], "val_mae": [], "val_mape": []}
        if module.deep is None or wide_only["val_mape"] < EXACT_MAPE:
            if module.deep is not None:
                logger.info(
                    "The wide part alone is exact on validation (MAPE %.4f%%); no deep part",
                    wide_only["val_mape"],
                )
                module.drop_deep()
            if on_epoch is not None:
                on_epoch({"train_loss": 0.0, **wide_only, "epoch": 1})
        else:
            optimizer = torch.optim.AdamW(
                [
                    {"params": module.deep.parameters(), "weight_decay": config.weight_decay},
                    {
                        "params": [module.table, *module.linear.parameters()],
                        "weight_decay": 0.0,
                        "lr": config.lr * 0.1,
                    },
                ],
                lr=config.lr,
            )
            history = train_module(
                module,
                optimizer,
                inputs=tensors(train.inputs),
                target=torch.from_numpy(train.latency.astype(np.float32)),
                loss=_relative_mse,
                epochs=config.epochs,
                batch_size=config.batch_size,
                seed=config.seed,
                scheduler=torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.epochs),
                validate=validate,
                patience=config.patience,
                on_epoch=on_epoch,
            )
        return Fitted(
            module=module,
            encoders={
                "wide": Encoder("joint", resolutions=data.resolutions),
                "deep": Encoder(DEEP_ENCODER),
            },
            architecture={
                "n_wide": module.table.numel(),
                "deep_features": int(module.deep_mean.numel()),
                "hidden": config.hidden,
                "depth": module.depth,
            },
            loss="relative squared error",
            normalization=NORMALIZATION,
            history=history,
        )
