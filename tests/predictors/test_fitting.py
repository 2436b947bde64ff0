"""The one training loop and the one penalised least-squares fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from ofa_latency_kedro.predictors.fitting import penalised_least_squares, train_module

X = torch.linspace(-1, 1, 64)[:, None]
Y = (3 * X + 1).squeeze(-1)


def fit_line(module: torch.nn.Module, lr: float, **options) -> dict[str, list[float]]:
    """``module`` trained by SGD on y = 3x + 1, validated by its MAE on the same points."""
    return train_module(
        module,
        torch.optim.SGD(module.parameters(), lr=lr),
        inputs=(X,),
        target=Y,
        loss=torch.nn.functional.mse_loss,
        forward=lambda rows: module(rows).squeeze(-1),
        validate=lambda: {"val_mae": float((module(X).squeeze(-1) - Y).abs().mean())},
        **options,
    )


def test_training_fits_a_line_and_records_every_epoch():
    module = torch.nn.Linear(1, 1)
    seen = []
    history = fit_line(module, 0.1, epochs=60, batch_size=16, seed=0, on_epoch=seen.append)
    assert len(history["train_loss"]) == len(history["val_mae"]) == 60
    assert [s["epoch"] for s in seen] == list(range(1, 61))
    assert history["val_mae"][-1] < 0.01 and not module.training


def test_early_stopping_keeps_the_best_state_and_stops():
    module = torch.nn.Linear(1, 1)
    with torch.no_grad():
        module.weight.fill_(3.0)
        module.bias.fill_(1.0)  # already exact: every step can only make it worse
    history = fit_line(module, 5.0, epochs=50, batch_size=8, seed=0, patience=2)
    assert len(history["train_loss"]) == 3  # stopped after patience epochs without a better one
    assert module.weight.item() == pytest.approx(3.0) and module.bias.item() == pytest.approx(1.0)


def test_the_same_seed_trains_the_same_weights():
    weights = []
    for _ in range(2):
        torch.manual_seed(0)
        module = torch.nn.Linear(1, 1)
        fit_line(module, 0.05, epochs=3, batch_size=7, seed=4)
        weights.append(module.weight.item())
    assert weights[0] == weights[1]


@given(st.integers(3, 30), st.floats(0.0, 10.0), st.integers(0, 10_000))
def test_least_squares_with_a_penalty_solves_the_normal_equations(n, penalty, seed):
    rng = np.random.default_rng(seed)
    design, target = rng.normal(size=(n, 3)), rng.normal(size=n)
    weights = np.array([0.0, penalty, penalty])
    prior = np.array([0.0, 0.5, -0.5])
    solution = penalised_least_squares(design, target, weights, prior=prior)
    gradient = design.T @ (design @ solution - target) + weights * (solution - prior)
    assert np.abs(gradient).max() < 1e-6 * max(1.0, np.abs(design.T @ target).max())


def test_nonnegative_least_squares_and_fewer_samples_than_columns():
    design = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    solution = penalised_least_squares(
        design, np.array([2.0, -1.0, 1.0]), [0.0, 0.0], nonnegative=True
    )
    assert (solution >= 0).all() and solution[1] == 0.0
    wide = penalised_least_squares(np.ones((2, 5)), np.array([5.0, 5.0]), np.zeros(5))
    np.testing.assert_allclose(wide, 1.0)  # the smallest of the many exact solutions
