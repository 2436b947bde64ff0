"""Few-shot weight training: a copy of a predictor's module with some of its weights
retrained on K samples of a new device, under the calibration that set the device's scale.

``last_layer``  the seed's method: every weight frozen but the output heads.
``finetune``    every weight, with a small learning rate, pulled towards the source's weights
                (L2-SP), so a few samples cannot drag it far.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from ofa_latency_kedro.predictors.fitting import train_module
from ofa_latency_kedro.predictors.metadata import Calibration
from ofa_latency_kedro.predictors.predictor import LatencyPredictor
from ofa_latency_kedro.search_space import ArchBatch

RETRAINING_METHODS = ("last_layer", "finetune")
STEPS = {"last_layer": 150, "finetune": 150}
LEARNING_RATE = {"last_layer": 1e-3, "finetune": 1e-4}
#: Pull of the trained weights towards the source's (L2-SP), per squared unit.
L2SP = 1e-1


def retrained_module(
    predictor: LatencyPredictor,
    batch: ArchBatch,
    latency: np.ndarray,
    method: str,
    *,
    seed: int,
    calibration: Calibration,
) -> torch.nn.Module:
    """A copy of the predictor's module with the method's parameters trained by Adam on the
    samples' relative squared error (full batch), its output mapped by ``calibration``."""
    torch.manual_seed(seed)
    module = copy.deepcopy(predictor.module)
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    trainable = (
        list(module.parameters()) if method == "finetune" else predictor.head_parameters(module)
    )
    anchors = [p.detach().clone() for p in trainable]
    for parameter in trainable:
        parameter.requires_grad_(True)

    def calibrated(*inputs: torch.Tensor) -> torch.Tensor:
        raw = module(*inputs).clamp(min=1e-3)
        return torch.exp(calibration.a + calibration.b * torch.log(raw))

    def loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        pull = sum(((p - a) ** 2).sum() for p, a in zip(trainable, anchors, strict=True))
        return torch.mean(((predicted - target) / target) ** 2) + L2SP * pull

    train_module(
        module,
        torch.optim.Adam(trainable, lr=LEARNING_RATE[method]),
        inputs=predictor.module_inputs(batch),
        target=torch.from_numpy(latency.astype(np.float32)),
        loss=loss,
        forward=calibrated,
        epochs=STEPS[method],
        batch_size=len(latency),
        seed=seed,
    )
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module
