"""The one mini-batch training loop and the one penalised least-squares fit that every
predictor kind, the generalized model and few-shot adaptation use."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from scipy.optimize import nnls

from ofa_latency_kedro.measurement.protocol import available_cpus

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Scores = Callable[[], dict[str, float]]


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Torch's intra-op threads set to ``threads`` (None: every CPU the process may use) for
    a block, and restored after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads or available_cpus())
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def train_module(
    module: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    inputs: Sequence[torch.Tensor],
    target: torch.Tensor,
    loss: Loss,
    epochs: int,
    batch_size: int,
    seed: int,
    forward: Callable[..., torch.Tensor] | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    validate: Scores | None = None,
    patience: int | None = None,
    monitor: str = "val_mae",
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> dict[str, list[float]]:
    """Train ``module`` for ``epochs`` passes over ``inputs`` in shuffled mini-batches
    (seeded), minimising ``loss(forward(*rows of inputs), rows of target)``; ``forward``
    defaults to the module itself.

    ``validate`` (called in eval mode after each epoch) gives scores such as ``val_mae``;
    they go into the history with ``train_loss`` and are passed to ``on_epoch`` (with the
    epoch number). With ``patience``, the state with the lowest ``monitor`` score (the
    untrained state included) is kept and training stops after ``patience`` epochs without
    a better one; without it, the last state is kept. The module is left in eval mode."""
    forward = forward or module
    generator = torch.Generator().manual_seed(seed)
    history: dict[str, list[float]] = {"train_loss": []}
    best_score, best_state, stale = np.inf, None, 0

    def scores() -> dict[str, float]:
        module.eval()
        with torch.no_grad():
            values = validate() if validate is not None else {}
        module.train()
        return values

    if patience is not None:
        best_score = scores()[monitor]
        best_state = {k: v.clone() for k, v in module.state_dict().items()}
    module.train()
    for epoch in range(1, epochs + 1):
        order = torch.randperm(len(target), generator=generator)
        losses = []
        for begin in range(0, len(order), batch_size):
            rows = order[begin : begin + batch_size]
            optimizer.zero_grad()
            value = loss(forward(*(x[rows] for x in inputs)), target[rows])
            value.backward()
            optimizer.step()
            losses.append(value.item())
        if scheduler is not None:
            scheduler.step()
        epoch_scores = scores()
        history["train_loss"].append(float(np.mean(losses)))
        for name, score in epoch_scores.items():
            history.setdefault(name, []).append(score)
        if on_epoch is not None:
            on_epoch({"train_loss": history["train_loss"][-1], **epoch_scores, "epoch": epoch})
        if patience is not None:
            if epoch_scores[monitor] < best_score:
                best_score, stale = epoch_scores[monitor], 0
                best_state = {k: v.clone() for k, v in module.state_dict().items()}
            else:
                stale += 1
                if stale > patience:
                    break
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    return history


def penalised_least_squares(
    design: np.ndarray,
    target: np.ndarray,
    penalty: np.ndarray | Sequence[float],
    *,
    prior: np.ndarray | Sequence[float] | None = None,
    nonnegative: bool = False,
) -> np.ndarray:
    """``w`` minimising ``|design w - target|^2 + sum_j penalty_j (w_j - prior_j)^2``: least
    squares on the design stacked over the penalty rows. A column with penalty 0 is free;
    where the samples are fewer than the columns the smallest solution is taken;
    ``nonnegative`` keeps every weight >= 0.

    (scikit-learn's ``Ridge``, which the wide part of the default predictor uses, penalises
    every coefficient alike and towards 0; the few-shot fits need free slopes, a prior and
    non-negative blends.)"""
    penalty = np.asarray(penalty, dtype=np.float64)
    prior = np.zeros(len(penalty)) if prior is None else np.asarray(prior, dtype=np.float64)
    root = np.sqrt(penalty)
    stacked = np.vstack([design, np.diag(root)])
    goal = np.concatenate([target, root * prior])
    if nonnegative:
        return nnls(stacked, goal)[0]
    return np.linalg.lstsq(stacked, goal, rcond=None)[0]
