"""Progress of long loops (measurement, training, search): a tqdm bar with rate and ETA,
redrawn every half second on a terminal and every 10 s in a log (a `kedro run` in CI)."""

from __future__ import annotations

import sys
from typing import Any


def progress_bar(
    total: int, description: str, enabled: bool | None = None, unit: str = "subnet"
) -> Any:
    """A tqdm bar; ``enabled=None`` shows it only on a terminal."""
    from tqdm import tqdm  # noqa: PLC0415

    if enabled is None:
        enabled = sys.stderr.isatty()
    return tqdm(
        total=total,
        desc=description,
        unit=unit,
        disable=not enabled,
        mininterval=0.5 if sys.stderr.isatty() else 10.0,
        dynamic_ncols=True,
    )
