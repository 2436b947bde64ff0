"""What kedro-viz shows of a dataset: its ``preview()`` (kedro-viz calls it with the
``metadata: kedro-viz: preview_args`` of the catalog entry) returns one of kedro-datasets'
preview types, and the return annotation tells kedro-viz how to draw it."""

from __future__ import annotations

import base64
from pathlib import Path

import pandas as pd
from kedro_datasets._typing import ImagePreview, TablePreview


def table_preview(frame: pd.DataFrame) -> TablePreview:
    """``frame`` as kedro-viz draws a table (pandas' ``split`` orient), missing values as
    nulls (JSON has no NaN)."""
    cleaned = frame.astype(object).where(frame.notna(), None)
    return TablePreview(cleaned.to_dict(orient="split"))


def image_preview(path: Path) -> ImagePreview:
    """The PNG file at ``path``, base64-encoded, as kedro-viz draws an image."""
    return ImagePreview(base64.b64encode(path.read_bytes()).decode("ascii"))
