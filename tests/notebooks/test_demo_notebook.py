"""The demo notebook runs top to bottom on tiny settings, as a user would run it.

A notebook is documentation that rots silently when the public API moves; executing it here
turns a renamed function or a changed return value into a failing test with the cell's
traceback. The kernel is this interpreter (so the editable install and its packages are the
ones tested) and its working directory is ``notebooks/``, where the notebook finds the seed's
data relative to the project.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbformat import NotebookNode

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
DEMO = NOTEBOOKS_DIR / "latency_prediction_demo.ipynb"
KERNEL_NAME = "ofa-latency-kedro-test"
CELL_TIMEOUT_S = 300

#: Overrides for a run of about half a minute: 1,500 training rows, 5 epochs, only the
#: adaptation methods that take milliseconds (the weight methods' cross-validation takes
#: tens of seconds), and a small evolution.
TINY = {
    "ROWS": 1500,
    "TRAINING_CONFIG": {"epochs": 5},
    "ADAPT_METHODS": ["calibrate", "calibrate_features"],
    "POPULATION": 16,
    "GENERATIONS": 10,
}

BEFORE = re.compile(r"before \(RTX predictor as is\): MAPE (?P<mape>[\d.]+)%")
AFTER = re.compile(r"after \((?P<method>\w+), K=(?P<k>\d+)\): MAPE (?P<mape>[\d.]+)%")
WINNER = re.compile(
    r"^budget (?P<budget>[\d.]+) ms: ok, predicted top-1 (?P<accuracy>[\d.]+)% "
    r"at (?P<latency>[\d.]+) ms",
    re.MULTILINE,
)


def kernel_manager(kernel_dir: Path) -> KernelManager:
    """A kernel running this interpreter, whatever kernel specs the machine has installed:
    a ``python3`` spec of the user's could start another Python without the project."""
    spec_dir = kernel_dir / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "ofa-latency-kedro (tests)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    specs = KernelSpecManager(kernel_dirs=[str(kernel_dir)], ensure_native_kernel=False)
    return KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs)


def with_parameters(notebook: NotebookNode, overrides: dict[str, object]) -> NotebookNode:
    """The notebook with a cell setting ``overrides`` right after its ``parameters`` cell, as
    papermill injects one (Python literals only: paths as strings)."""
    tagged = [
        index
        for index, cell in enumerate(notebook.cells)
        if "parameters" in cell.metadata.get("tags", [])
    ]
    assert len(tagged) == 1, "the notebook needs exactly one cell tagged 'parameters'"
    source = "\n".join(f"{name} = {value!r}" for name, value in overrides.items())
    injected = nbformat.v4.new_code_cell(source, id="injected-parameters")
    injected.metadata["tags"] = ["injected-parameters"]
    notebook.cells.insert(tagged[0] + 1, injected)
    return notebook


def execute(overrides: dict[str, object], kernel_dir: Path) -> NotebookNode:
    """Run the demo with ``overrides`` in ``notebooks/``; a failing cell raises
    `CellExecutionError` with its traceback."""
    notebook = with_parameters(nbformat.read(DEMO, as_version=4), overrides)
    client = NotebookClient(
        notebook,
        km=kernel_manager(kernel_dir),
        timeout=CELL_TIMEOUT_S,
        allow_errors=False,
        resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
    )
    return client.execute()


def stdout(notebook: NotebookNode) -> str:
    return "".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "stream" and output.name == "stdout"
    )


def images(notebook: NotebookNode) -> int:
    return sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )


def test_saved_without_outputs() -> None:
    """The committed notebook carries no outputs or execution counts: diffs stay readable
    and no stale figures are shown as if they were current."""
    notebook = nbformat.read(DEMO, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {cell.id} has outputs"
            assert cell.execution_count is None, f"cell {cell.id} has an execution count"


@pytest.mark.slow
def test_demo_runs_end_to_end(shared_dir: Path, tmp_path: Path) -> None:
    """Every cell runs; the adapted predictor beats the source on the new device, each budget
    gets a winner within it, the figures render, and only the output folder is written."""
    before_files = sorted(NOTEBOOKS_DIR.rglob("*"))
    output_dir = tmp_path / "outputs"

    notebook = execute({**TINY, "OUTPUT_DIR": str(output_dir)}, tmp_path / "kernels")
    text = stdout(notebook)

    assert f"seed data: {shared_dir / 'seed_data'}" in text
    before, after = BEFORE.search(text), AFTER.search(text)
    assert before and after, f"no before/after figures in the output:\n{text}"
    assert after["method"] in TINY["ADAPT_METHODS"]
    assert int(after["k"]) == 20
    assert float(after["mape"]) < float(before["mape"])
    assert float(after["mape"]) < 10.0

    winners = list(WINNER.finditer(text))
    assert len(winners) == 2, f"expected two search results:\n{text}"
    for winner in winners:
        assert float(winner["latency"]) <= float(winner["budget"])
        assert 50.0 < float(winner["accuracy"]) < 90.0

    assert images(notebook) == 3  # two parity plots and the Pareto front
    assert (output_dir / "Tesla_P40_GPU_ofa_adapted.pt").is_file()
    assert (output_dir / "nas_results.csv").is_file()
    assert sorted(NOTEBOOKS_DIR.rglob("*")) == before_files


@pytest.mark.slow
def test_missing_data_fails_with_where_to_put_it(tmp_path: Path) -> None:
    """A cell error fails the run (errors are not swallowed) and the notebook says where the
    seed's data should be."""
    missing = tmp_path / "no-shared-here"

    with pytest.raises(CellExecutionError, match="the seed's data was not found"):
        execute({"SHARED": str(missing)}, tmp_path / "kernels")
