"""Figures of a predictor: parity (predicted vs measured), loss curves, few-shot learning
curves and zero-shot scores. Each is a bare `matplotlib.figure.Figure`, made outside pyplot:
nothing stays open in pyplot's global state, however many are made; it saves as usual."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure


def parity_plot(
    measured_ms: np.ndarray,
    predicted_ms: np.ndarray,
    title: str,
    metrics: dict[str, Any] | None = None,
) -> Figure:
    """Predicted against measured latency, with the +-10% band."""
    figure = Figure(figsize=(5.2, 5))
    axes = figure.subplots()
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
    figure = Figure(figsize=(6, 3.6))
    left = figure.subplots()
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
    figure = Figure(figsize=(6.4, 4.4))
    axes = figure.subplots()
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


def leave_one_out_plot(results: Any) -> Figure:
    """Zero-shot Spearman and MAPE of every held-out dataset, one bar per descriptor (the
    training devices' own heads included for comparison)."""
    figure = Figure(figsize=(10, 4.2))
    rank_axes, error_axes = figure.subplots(1, 2)
    held_out = list(dict.fromkeys(results["held_out"]))
    descriptors = list(dict.fromkeys(results["descriptor"]))
    width = 0.8 / max(len(descriptors), 1)
    for index, descriptor in enumerate(descriptors):
        rows = results[results["descriptor"] == descriptor].set_index("held_out")
        positions = [held_out.index(name) + index * width for name in rows.index]
        rank_axes.bar(positions, rows["spearman"], width, label=descriptor)
        error_axes.bar(positions, rows["mape"], width, label=descriptor)
    for axes, label in ((rank_axes, "Spearman (test rows)"), (error_axes, "MAPE (%)")):
        axes.set_xticks([i + 0.4 - width / 2 for i in range(len(held_out))])
        axes.set_xticklabels(held_out, rotation=15, fontsize=8)
        axes.set_ylabel(label)
        axes.grid(axis="y", alpha=0.3)
    low = float(results["spearman"].min())
    rank_axes.set_ylim(max(0.0, low - (1 - low) * 0.5), 1.0)
    error_axes.set_yscale("log")
    error_axes.legend(fontsize=7)
    figure.suptitle("Leave-one-hardware-out: zero-shot generalized predictor", fontsize=10)
    figure.tight_layout()
    return figure
