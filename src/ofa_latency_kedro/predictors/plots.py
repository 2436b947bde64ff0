"""Figures of a predictor: parity (predicted vs measured) and loss curves."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def parity_plot(
    measured_ms: np.ndarray,
    predicted_ms: np.ndarray,
    title: str,
    metrics: dict[str, Any] | None = None,
) -> Figure:
    """Predicted against measured latency, with the +-10% band."""
    figure, axes = plt.subplots(figsize=(5.2, 5))
    low = float(min(np.min(measured_ms), np.min(predicted_ms)))
    high = float(max(np.max(measured_ms), np.max(predicted_ms)))
    line = np.linspace(low, high, 2)
    axes.fill_between(line, line * 0.9, line * 1.1, color="tab:green", alpha=0.12, label="+-10%")
    axes.plot(line, line, color="black", linewidth=0.8, label="exact")
    axes.scatter(measured_ms, predicted_ms, s=5, alpha=0.5, color="tab:blue", label="test subnets")
    axes.set_xlabel("measured latency (ms)")
    axes.set_ylabel("predicted latency (ms)")
    if metrics:
        axes.text(
            0.03,
            0.97,
            f"MAE {metrics['mae']:.3f} ms\nMAPE {metrics['mape']:.2f}%\nSpearman {metrics['spearman']:.4f}",
            transform=axes.transAxes,
            va="top",
            fontsize=9,
        )
    axes.set_title(title, fontsize=10)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    return figure


def loss_curves(history: dict[str, list[float]], title: str) -> Figure:
    """Training loss and validation MAE per epoch."""
    figure, left = plt.subplots(figsize=(6, 3.6))
    epochs = np.arange(1, len(history.get("val_mae", [])) + 1)
    if len(epochs):
        left.plot(epochs, history["train_loss"], color="tab:blue", label="training loss")
        left.set_yscale("log")
        right = left.twinx()
        right.plot(epochs, history["val_mae"], color="tab:orange", label="validation MAE (ms)")
        right.set_ylabel("validation MAE (ms)")
        figure.legend(loc="upper right", fontsize=8)
    else:
        left.text(
            0.5,
            0.5,
            "fitted in closed form (no epochs)",
            ha="center",
            va="center",
            transform=left.transAxes,
        )
    left.set_xlabel("epoch")
    left.set_ylabel("training loss")
    left.set_title(title, fontsize=10)
    figure.tight_layout()
    return figure


def learning_curve_plot(curves: Any, title: str) -> Figure:
    """Test MAPE against the number of samples K, one line per method and sampler (mean of
    the draws, the spread shaded)."""
    figure, axes = plt.subplots(figsize=(6.4, 4.4))
    summary = curves.groupby(["method", "sampler", "k"])["mape"].agg(["mean", "min", "max"])
    for (method, sampler), rows in summary.groupby(level=["method", "sampler"]):
        ks = rows.index.get_level_values("k")
        label = method if curves["sampler"].nunique() == 1 else f"{method} ({sampler})"
        line = axes.plot(ks, rows["mean"], marker="o", markersize=3, label=label)[0]
        axes.fill_between(ks, rows["min"], rows["max"], color=line.get_color(), alpha=0.12)
    axes.set_xscale("log")
    axes.set_xlabel("measured subnets of the new device (K)")
    axes.set_ylabel("test MAPE (%)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    axes.set_title(title, fontsize=10)
    figure.tight_layout()
    return figure
