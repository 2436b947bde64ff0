"""The predictors' figures are built outside pyplot: a long session (a notebook, a test run,
a service) that makes many of them keeps none alive, and each still saves as a PNG."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ofa_latency_kedro.predictors.plots import (
    learning_curve_plot,
    leave_one_out_plot,
    loss_curves,
    parity_plot,
)

PNG = b"\x89PNG"


def figures() -> dict[str, object]:
    measured = np.linspace(10, 40, 30)
    curves = pd.DataFrame(
        {
            "method": ["calibrate"] * 4,
            "sampler": ["random"] * 4,
            "k": [5, 5, 20, 20],
            "mape": [3.0, 3.4, 1.9, 2.1],
        }
    )
    scores = pd.DataFrame(
        {
            "held_out": ["a", "a", "b", "b"],
            "descriptor": ["reference", "registry"] * 2,
            "spearman": [0.99, 0.97, 0.98, 0.95],
            "mape": [4.0, 9.0, 5.0, 12.0],
        }
    )
    return {
        "parity": parity_plot(
            measured, measured * 1.02, "parity", {"mae": 0.5, "mape": 2.0, "spearman": 0.99}
        ),
        "loss": loss_curves({"train_loss": [1.0, 0.5], "val_mae": [0.9, 0.4]}, "loss"),
        "learning curve": learning_curve_plot(curves, "curves"),
        "leave one out": leave_one_out_plot(scores),
    }


def test_making_figures_leaves_no_figure_open_in_pyplot_and_each_saves_a_png(tmp_path: Path):
    open_before = plt.get_fignums()
    for _ in range(25):  # pyplot warns past 20 open figures
        made = figures()
    assert plt.get_fignums() == open_before
    for name, figure in made.items():
        path = tmp_path / f"{name}.png"
        figure.savefig(path)
        assert path.read_bytes().startswith(PNG), name
