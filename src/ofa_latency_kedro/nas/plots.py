"""The accuracy-vs-latency Pareto plot of a search (a bare `matplotlib.figure.Figure`, made
outside pyplot, as `predictors.plots` makes its figures)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def pareto_plot(results: pd.DataFrame, populations: dict[str, Any]) -> Figure:
    """Each search's final population (grey), its winner per budget (dots; crosses where it
    was measured), the budgets (dashed) and the front through the winners."""
    objective = results["objective"].iloc[0] if len(results) else "accuracy"
    column = "predicted_accuracy" if objective == "accuracy" else "macs"
    scale = 100.0 if objective == "accuracy" else 1e-6
    figure = Figure(figsize=(7, 4.6))
    axes = figure.subplots()
    for points in populations.values():
        axes.scatter(
            points["latency_ms"],
            np.asarray(points["fitness"]) * (100.0 if objective == "accuracy" else 1.0),
            s=6,
            color="0.75",
            alpha=0.5,
            zorder=1,
        )
    ok = results[results["status"] == "ok"]
    for hardware, unsorted in ok.groupby("hardware", sort=False):
        rows = unsorted.sort_values("budget_ms")
        value = rows[column].to_numpy(dtype=float) * scale
        line = axes.plot(
            rows["predicted_latency_ms"],
            value,
            marker="o",
            label=f"{hardware} (predicted)",
            zorder=3,
        )
        if "measured_latency_ms" in rows and rows["measured_latency_ms"].notna().any():
            axes.scatter(
                rows["measured_latency_ms"],
                value,
                marker="x",
                s=60,
                color=line[0].get_color(),
                label=f"{hardware} (measured)",
                zorder=4,
            )
        for budget in rows["budget_ms"]:
            axes.axvline(
                budget, color=line[0].get_color(), linestyle="--", linewidth=0.8, alpha=0.6
            )
    axes.set_xlabel("latency (ms)")
    axes.set_ylabel(
        "predicted top-1 accuracy (%)" if objective == "accuracy" else "MMACs (proxy objective)"
    )
    axes.set_title(f"Best subnets under latency budgets (objective: {objective})", fontsize=10)
    if len(ok):
        axes.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    return figure
