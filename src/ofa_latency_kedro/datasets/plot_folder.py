"""A folder of matplotlib figures (the catalog's ``predictor_plots``): saved as kedro-datasets'
``matplotlib.MatplotlibDataset`` saves a dict of figures, one PNG per key; in kedro-viz it
previews as one of its images."""

from __future__ import annotations

from pathlib import Path

from kedro.io import DatasetError
from kedro.io.core import get_filepath_str
from kedro_datasets.matplotlib import MatplotlibDataset

from ofa_latency_kedro.datasets.previews import ImagePreview, image_preview


class PlotFolderDataset(MatplotlibDataset):
    """``matplotlib.MatplotlibDataset`` (same arguments) for a folder of figures, with a
    preview of one of them."""

    def preview(self, image: str | None = None) -> ImagePreview:
        """For kedro-viz: the PNG named ``image`` (e.g. ``RTX_2080_Ti_GPU_ofa_parity.png``),
        or the first PNG of the folder in name order."""
        folder = Path(get_filepath_str(self._get_load_path(), self._protocol))
        if image is not None:
            return image_preview(folder / image)
        images = sorted(folder.glob("*.png"))
        if not images:
            raise DatasetError(f"{folder} holds no .png plot to preview")
        return image_preview(images[0])
