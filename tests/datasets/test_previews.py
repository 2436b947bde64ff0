"""What kedro-viz shows of the project's own datasets: the latency folder and the predictor
folder as tables, the plot folder as an image, found the way kedro-viz finds previews (a
``preview`` method, its return annotation, the catalog's ``preview_args``)."""

from __future__ import annotations

import base64
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from kedro.io import DatasetError
from kedro_viz.models.flowchart.node_metadata import DataNodeMetadata
from kedro_viz.models.flowchart.nodes import GraphNode

from ofa_latency_kedro.datasets import (
    LatencyFolderDataset,
    PlotFolderDataset,
    PredictorFolderDataset,
)
from ofa_latency_kedro.encoding import load_latency_csv
from ofa_latency_kedro.predictors import train_predictor

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def shown_by_kedro_viz(name: str, dataset) -> DataNodeMetadata:
    """The panel kedro-viz builds for a dataset node (its preview and preview type)."""
    node = GraphNode.create_data_node(
        dataset_id=name,
        dataset_name=name,
        layer=None,
        tags=set(),
        dataset=dataset,
        modular_pipelines=set(),
    )
    return DataNodeMetadata(data_node=node)


@pytest.fixture
def latency_folder(tmp_path: Path, shared_dir: Path) -> Path:
    seed = shared_dir / "seed_data" / "latency"
    folder = tmp_path / "latency"
    folder.mkdir()
    for name, rows in (("RTX_2080_Ti_GPU_ofa", 12), ("Tesla_P40_GPU_ofa", 7)):
        lines = (seed / f"{name}.csv").read_text().splitlines()[: rows + 1]
        (folder / f"{name}.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_the_latency_folder_previews_the_rows_of_each_file(latency_folder: Path):
    preview = LatencyFolderDataset(str(latency_folder)).preview()
    table = pd.DataFrame(preview["data"], columns=preview["columns"])
    assert table[["dataset", "rows", "hardware", "space"]].values.tolist() == [
        ["RTX_2080_Ti_GPU_ofa", 12, "RTX_2080_Ti_GPU", "ofa"],
        ["Tesla_P40_GPU_ofa", 7, "Tesla_P40_GPU", "ofa"],
    ]
    rtx = pd.read_csv(latency_folder / "RTX_2080_Ti_GPU_ofa.csv")
    assert table["latency_ms_median"][0] == pytest.approx(rtx["latency"].median())


def test_the_latency_folder_previews_the_head_of_its_first_file(latency_folder: Path):
    preview = LatencyFolderDataset(str(latency_folder)).preview(nrows=3, head=True)
    table = pd.DataFrame(preview["data"], columns=preview["columns"])
    rtx = pd.read_csv(latency_folder / "RTX_2080_Ti_GPU_ofa.csv")
    assert len(table) == 3 and set(table["dataset"]) == {"RTX_2080_Ti_GPU_ofa"}
    assert table["child_arch"].tolist() == rtx["child_arch"][:3].tolist()


def test_an_empty_latency_folder_previews_an_empty_table(tmp_path: Path):
    dataset = LatencyFolderDataset(str(tmp_path / "none"))
    assert dataset.preview()["data"] == []
    assert dataset.preview(head=True)["data"] == []


def test_the_predictor_folder_previews_a_table_of_metadata(tmp_path: Path, shared_dir: Path):
    table = load_latency_csv(shared_dir / "seed_data" / "latency" / "Tesla_P40_GPU_ofa.csv")
    predictor = train_predictor(table.iloc[:300], config={"epochs": 2, "hidden": 16, "depth": 1})
    dataset = PredictorFolderDataset(str(tmp_path))
    dataset.save({"Tesla_P40_GPU_ofa": predictor})
    preview = dataset.preview()
    rows = pd.DataFrame(preview["data"], columns=preview["columns"]).to_dict("records")
    assert rows == [
        {
            "predictor": "Tesla_P40_GPU_ofa",
            "kind": predictor.kind,
            "hardware": "Tesla_P40_GPU",
            "space": "ofa",
            "width_mult": predictor.width_mult,
            "encoder": predictor.encoder_name,
            "train_rows": predictor.metadata.training["rows"]["train"],
            "val_mape": pytest.approx(predictor.metrics["val"]["mape"]),
            "test_mape": pytest.approx(predictor.metrics["test"]["mape"]),
            "test_spearman": pytest.approx(predictor.metrics["test"]["spearman"]),
        }
    ]


def plots(folder: Path) -> PlotFolderDataset:
    dataset = PlotFolderDataset(filepath=str(folder))
    figures = {}
    for name, color in (("b_loss.png", "red"), ("a_parity.png", "blue")):
        figure, axes = plt.subplots()
        axes.plot([0, 1], [0, 1], color=color)
        figures[name] = figure
    dataset.save(figures)
    for figure in figures.values():
        plt.close(figure)
    return dataset


def test_the_plot_folder_previews_one_of_its_images(tmp_path: Path):
    dataset = plots(tmp_path / "plots")
    first = base64.b64decode(dataset.preview())
    assert first == (tmp_path / "plots" / "a_parity.png").read_bytes()
    assert first.startswith(PNG_SIGNATURE)
    named = base64.b64decode(dataset.preview(image="b_loss.png"))
    assert named == (tmp_path / "plots" / "b_loss.png").read_bytes()
    with pytest.raises(DatasetError, match="holds no .png plot"):
        PlotFolderDataset(filepath=str(tmp_path / "empty")).preview()


def test_kedro_viz_finds_each_preview_with_its_type_and_the_catalogs_arguments(
    latency_folder: Path, tmp_path: Path
):
    head = {"kedro-viz": {"preview_args": {"head": True, "nrows": 2}}}
    shown = shown_by_kedro_viz(
        "measured_so_far", LatencyFolderDataset(str(latency_folder), metadata=head)
    )
    assert shown.preview_type == "TablePreview" and len(shown.preview["data"]) == 2
    shown = shown_by_kedro_viz("raw_latency", LatencyFolderDataset(str(latency_folder)))
    assert shown.preview_type == "TablePreview" and len(shown.preview["data"]) == 2
    shown = shown_by_kedro_viz("latency_predictors", PredictorFolderDataset(str(tmp_path / "p")))
    assert shown.preview_type == "TablePreview" and shown.preview["data"] == []
    shown = shown_by_kedro_viz("predictor_plots", plots(tmp_path / "plots"))
    assert shown.preview_type == "ImagePreview"
    assert base64.b64decode(shown.preview).startswith(PNG_SIGNATURE)
