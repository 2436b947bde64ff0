"""``seed_mlp``: the seed's predictor (MLP 128-400-400-400-1 on ``seed128``, or on
``seed131``, which appends three hardware numbers, for its generalized model), and its recipe:
SGD with momentum, RMSE loss, the last epoch kept (`SEED_RECIPE`). Kept for side-by-side
comparisons and to read the seed's own checkpoints (`from_seed_state`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch

from ofa_latency_kedro.encoding.encoders import Encoder
from ofa_latency_kedro.encoding.loading import dataset_name_parts
from ofa_latency_kedro.predictors.fitting import train_module
from ofa_latency_kedro.predictors.kinds.base import (
    EpochCallback,
    Fitted,
    PredictorKind,
    tensors,
    validation_scores,
)
from ofa_latency_kedro.predictors.metadata import PredictorError, PredictorMetadata
from ofa_latency_kedro.predictors.models import SeedMLP
from ofa_latency_kedro.search_space import ArchBatch
from ofa_latency_kedro.search_space.constants import SEED_RESOLUTIONS

if TYPE_CHECKING:
    from ofa_latency_kedro.predictors.config import TrainingConfig
    from ofa_latency_kedro.predictors.data import PreparedData


def _rmse(predicted: torch.Tensor, latency: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(torch.nn.functional.mse_loss(predicted, latency) + 1e-6)


class SeedMLPKind(PredictorKind):
    name: ClassVar[str] = "seed_mlp"

    @classmethod
    def build(cls, metadata: PredictorMetadata) -> SeedMLP:
        return SeedMLP(metadata.architecture["in_features"], metadata.architecture["hidden"])

    @classmethod
    def module_inputs(
        cls, metadata: PredictorMetadata, batch: ArchBatch, hardware: np.ndarray | None = None
    ) -> tuple[torch.Tensor, ...]:
        return (torch.from_numpy(metadata.encoders["input"].encode(batch, hardware)),)

    @classmethod
    def predict_chunk(
        cls,
        module: torch.nn.Module,
        metadata: PredictorMetadata,
        batch: ArchBatch,
        hardware: np.ndarray | None = None,
    ) -> np.ndarray:
        return module(*cls.module_inputs(metadata, batch, hardware)).double().numpy()

    @classmethod
    def training_inputs(
        cls, batch: ArchBatch, resolutions: tuple[int, ...]
    ) -> tuple[np.ndarray, ...] | None:
        return (Encoder("seed128").encode(batch),)

    @classmethod
    def fit(
        cls, data: PreparedData, config: TrainingConfig, on_epoch: EpochCallback | None
    ) -> Fitted:
        """The seed's recipe: SGD on the RMSE of raw latency, last epoch kept."""
        features = data.train.inputs[0]
        module = SeedMLP(features.shape[1], config.hidden)
        val_inputs = tensors(data.val.inputs)
        optimizer = torch.optim.SGD(
            module.parameters(),
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
        )
        history = train_module(
            module,
            optimizer,
            inputs=tensors(data.train.inputs),
            target=torch.from_numpy(data.train.latency.astype(np.float32)),
            loss=_rmse,
            epochs=config.epochs,
            batch_size=config.batch_size,
            seed=config.seed,
            validate=lambda: validation_scores(
                module(*val_inputs).double().numpy(), data.val.latency
            ),
            on_epoch=on_epoch,
        )
        return Fitted(
            module=module,
            encoders={"input": Encoder("seed128")},
            architecture={"in_features": int(features.shape[1]), "hidden": config.hidden},
            loss="rmse (seed recipe)",
            history=history,
        )

    @classmethod
    def from_seed_state(
        cls, state: Mapping[str, torch.Tensor], path: Path
    ) -> tuple[SeedMLP, PredictorMetadata]:
        """A seed checkpoint (a bare state dict in one of `SeedMLP.state_keys`' layouts) as a
        module and metadata; the hardware and space come from the file name."""
        try:
            module = SeedMLP.from_state(state)
        except ValueError as exc:
            raise PredictorError(f"{path}: {exc}") from None
        in_features = module.in_features
        if in_features not in (128, 131):
            raise PredictorError(
                f"{path}: the seed's MLP takes 128 or 131 features, this one {in_features}"
            )
        hardware, space = names_from_checkpoint_file(path)
        metadata = PredictorMetadata(
            kind=cls.name,
            source=str(path),
            encoders={"input": Encoder("seed128" if in_features == 128 else "seed131")},
            architecture={"in_features": in_features, "hidden": module.hidden},
            hardware=hardware,
            space=space,
            width_mult=SEED_DATASET_WIDTHS.get(hardware),
            domain={"resolutions": list(SEED_RESOLUTIONS)},
        )
        return module, metadata


#: The width of the network each of the seed's datasets measured, by the hardware name of
#: its checkpoint (conf/base/hardware.yml lists the same; a test keeps them equal). The
#: seed's generalized checkpoint learnt from the two GPUs' width-1.0 datasets.
SEED_DATASET_WIDTHS: dict[str, float] = {
    "RTX_2080_Ti_GPU": 1.0,
    "Tesla_P40_GPU": 1.0,
    "Intel_Xeon_CPU": 1.0,
    "note10_lookuptable": 1.2,
    "generalized": 1.0,
}
#: The seed named its Note10 checkpoint after the phone, its dataset after the lookup table.
_SEED_HARDWARE_ALIASES = {"note10": "note10_lookuptable"}


def names_from_checkpoint_file(path: Path) -> tuple[str | None, str | None]:
    """``checkpoint_RTX_2080_Ti_GPU_ofa.pt`` -> (``RTX_2080_Ti_GPU``, ``ofa``);
    ``checkpoint_note10_ofa.pt`` -> (``note10_lookuptable``, ``ofa``), its dataset's name."""
    stem = re.sub(
        r"^(finetune_note_10_)?checkpoint_(finetune_)?", "", path.stem, flags=re.IGNORECASE
    )
    hardware, space = dataset_name_parts(stem)
    if not space:
        return None, space
    return _SEED_HARDWARE_ALIASES.get(hardware, hardware), space
