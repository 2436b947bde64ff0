"""Take the documentation's two screenshots, by hand, after a change to what MLflow or kedro-viz
show:

- ``docs/images/mlflow_compare.png``: MLflow's compare view of two predictor runs, their parity
  plots side by side;
- ``docs/images/kedro_viz_stages.png``: kedro-viz's default pipeline, collapsed to one
  namespace per pipeline (the stages sampling -> encoding -> training -> nas).

    .venv/bin/python docs/screenshots.py            # both
    .venv/bin/python docs/screenshots.py viz        # one of them (mlflow, viz)

It works in a temporary copy of the project: the first ``--rows`` of the seed's RTX 2080 Ti
and Tesla P40 OFA files through ``kedro run --pipelines encoding,training``, ``mlflow ui`` on
that copy's store and ``kedro viz build`` served on loopback, photographed by the system
Chromium through Playwright, with the steps the browser tests take (tests/surface/pages.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import mlflow
import yaml
from playwright.sync_api import Page, expect, sync_playwright

CHECKOUT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(CHECKOUT))  # the tests' helpers, as in a test run from the checkout

from ofa_latency_kedro.pipeline_registry import DEFAULT_PIPELINES  # noqa: E402
from tests.helpers import copy_project, copy_seed_rows, kedro  # noqa: E402
from tests.surface import pages  # noqa: E402
from tests.surface.browser import VIEWPORT, find_or_install_chromium, launch_options  # noqa: E402
from tests.surface.servers import mlflow_ui, static_site  # noqa: E402

DATASETS = ["RTX_2080_Ti_GPU_ofa", "Tesla_P40_GPU_ofa"]
MLFLOW_COMPARE = "mlflow_compare.png"
KEDRO_VIZ_STAGES = "kedro_viz_stages.png"
#: Tall enough for the four stages of the default pipeline, one above the other.
VIZ_VIEWPORT = {"width": 1400, "height": 1700}
#: A page as tall as the compare view's artifacts section with its two plots.
SCREEN = {**VIEWPORT, "height": 1100}
TIMEOUT_MS = 60_000


def _check(step: str, completed) -> None:
    if completed.returncode != 0:
        raise SystemExit(f"{step} failed:\n{completed.stdout[-3000:]}{completed.stderr[-3000:]}")


def experiment_id(project: Path) -> str:
    """The id of the experiment conf/base/mlflow.yml names, in the project's store."""
    conf = yaml.safe_load((project / "conf" / "base" / "mlflow.yml").read_text())
    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    return client.get_experiment_by_name(conf["tracking"]["experiment"]["name"]).experiment_id


def settle(page: Page) -> None:
    """Wait for the page's fonts and for its transitions to end (endless animations, such as
    a spinner, aside)."""
    page.evaluate("document.fonts.ready.then(() => true)")
    page.wait_for_function(
        """() => document.getAnimations().every(animation =>
            animation.playState !== "running"
            || animation.effect.getComputedTiming().iterations === Infinity)"""
    )


def mlflow_compare(page: Page, project: Path, out: Path) -> None:
    """Compare the two predictor runs and show their parity plots."""
    with mlflow_ui(project, log_path=project / "mlflow_ui.log") as base_url:
        pages.skip_assistant(page)
        page.goto(pages.runs_url(base_url, experiment_id(project)))
        parent = page.locator(pages.RUN_NAME_CELL).get_by_role("link").first
        pages.show_child_runs(page, parent.inner_text())
        pages.compare_runs(page, DATASETS)
        plot = pages.artifact_node(page, pages.PARITY_PLOT)
        expect(plot).to_be_visible()
        plot.click()
        expect(page.get_by_role("img", name=pages.PARITY_PLOT, exact=True)).to_have_count(2)
        for image in page.get_by_role("img", name=pages.PARITY_PLOT, exact=True).all():
            image.evaluate("img => img.decode()")
        plot.evaluate("node => node.scrollIntoView({block: 'center'})")
        settle(page)
        page.screenshot(path=out / MLFLOW_COMPARE)


def kedro_viz_stages(page: Page, project: Path, out: Path) -> None:
    """The default pipeline as kedro-viz opens it: namespaces collapsed."""
    _check("kedro viz build", kedro(project, "viz", "build", timeout=300))
    with static_site(project / "build", log_path=project / "http_server.log") as url:
        page.set_viewport_size(VIZ_VIEWPORT)  # kedro-viz fits the graph to the window
        # kedro-viz's own settings (its localStorage entry): no tour of new features on top
        page.add_init_script(
            "localStorage.setItem('KedroViz', JSON.stringify({showFeatureHints: false}))"
        )
        page.goto(url)
        for name in DEFAULT_PIPELINES:
            expect(pages.flowchart_node(page, name)).to_be_visible()
        # the graph alone, fitted to the window: no menu, no minimap
        for label in ("Hide menu", "Turn minimap off", "Reset zoom"):
            page.get_by_role("button", name=label).click()
        page.mouse.move(VIZ_VIEWPORT["width"] // 2, 10)  # no tooltip on the last button
        settle(page)
        page.screenshot(path=out / KEDRO_VIZ_STAGES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("which", nargs="*", help="mlflow, viz or both (the default)")
    parser.add_argument("--rows", type=int, default=1000, help="seed rows per dataset")
    parser.add_argument("--epochs", type=int, default=60, help="training epochs")
    parser.add_argument("--out", type=Path, default=CHECKOUT / "docs" / "images")
    parser.add_argument(
        "--shared", type=Path, default=CHECKOUT.parent / "shared", help="the seed data's folder"
    )
    args = parser.parse_args()
    # not argparse's `choices`: Python 3.11 checks an empty `nargs="*"` list against them
    args.which = args.which or ["mlflow", "viz"]
    if unknown := sorted(set(args.which) - {"mlflow", "viz"}):
        parser.error(f"unknown screenshot {unknown}; choose from mlflow, viz")
    args.out.mkdir(parents=True, exist_ok=True)
    expect.set_options(timeout=TIMEOUT_MS)
    with tempfile.TemporaryDirectory(prefix="screenshots-") as folder:
        project = copy_project(Path(folder) / "project")
        if "mlflow" in args.which:
            copy_seed_rows(project, args.shared, DATASETS, args.rows)
            params = f"training.config.epochs={args.epochs}"
            run = kedro(project, "run", "--pipelines", "encoding,training", "--params", params)
            _check("kedro run --pipelines encoding,training", run)
        with sync_playwright() as driver:
            browser = driver.chromium.launch(**launch_options(find_or_install_chromium()))
            for which, take in (("mlflow", mlflow_compare), ("viz", kedro_viz_stages)):
                if which in args.which:
                    page = browser.new_page(viewport=SCREEN)
                    take(page, project, args.out)
                    page.close()
            browser.close()
    for which, name in (("mlflow", MLFLOW_COMPARE), ("viz", KEDRO_VIZ_STAGES)):
        if which in args.which:
            print(f"wrote {args.out / name}")  # noqa: T201


if __name__ == "__main__":
    main()
