"""The search's Pareto figure is built outside pyplot (no figure left open) and saves."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from ofa_latency_kedro.nas.plots import pareto_plot


def test_the_pareto_plot_leaves_no_figure_open_in_pyplot_and_saves_a_png(tmp_path: Path):
    results = pd.DataFrame(
        {
            "objective": ["macs", "macs"],
            "status": ["ok", "ok"],
            "hardware": ["note10", "note10"],
            "budget_ms": [20.0, 30.0],
            "predicted_latency_ms": [19.5, 29.0],
            "measured_latency_ms": [19.8, None],
            "macs": [2.0e8, 3.1e8],
        }
    )
    populations = {"note10 20ms": {"latency_ms": [15.0, 18.0, 19.5], "fitness": [1.5, 1.8, 2.0]}}
    open_before = plt.get_fignums()
    figure = pareto_plot(results, populations)
    assert plt.get_fignums() == open_before
    figure.savefig(tmp_path / "pareto.png")
    assert (tmp_path / "pareto.png").read_bytes().startswith(b"\x89PNG")
