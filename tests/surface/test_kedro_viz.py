"""The static kedro-viz site (`make viz-build`) as a person opens it: served over HTTP, drawn
by a real browser, one pipeline at a time, with every registered node on the flowchart."""

from __future__ import annotations

import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from kedro.framework.startup import bootstrap_project

from tests.helpers import free_port, kedro
from tests.surface.browser import Chromium, assert_screenshot
from tests.surface.servers import background_server

#: Virtual time for the app to fetch its pipeline and lay out the graph; a render that comes
#: back incomplete (a slow machine) is tried once more with the longer budget.
RENDER_BUDGETS_MS = (3000, 15000)
SCREENSHOT_BUDGET_MS = 6000


def registered_nodes(project: Path) -> dict[str, set[str]]:
    """Node names of each registered pipeline, as Kedro itself lists them."""
    bootstrap_project(project)
    from kedro.framework.project import pipelines

    return {name: {node.name for node in pipeline.nodes} for name, pipeline in pipelines.items()}


def pretty_name(name: str) -> str:
    """kedro-viz's "pretty name" of a node (its ``Sy`` helper in the 12.x bundle), shown
    instead of the real name when that display option is on: ``plan_subnets`` -> ``Plan
    Subnets``. It is off by default, and each Chromium run starts from a fresh profile."""
    spaced = name.replace("-", " ").replace("_", " ").replace(":", ": ").strip()
    return re.sub(r"(^|\s)\S", lambda match: match.group(0).upper(), spaced)


class FlowchartPage(HTMLParser):
    """What the rendered kedro-viz page shows: the pipeline picked in the selector and the
    task nodes drawn on the flowchart (full name -> the label a person reads)."""

    def __init__(self) -> None:
        super().__init__()
        self.selected_pipeline: str | None = None
        self.task_labels: dict[str, str] = {}
        self._in_selector = False
        self._node: str | None = None
        self._in_label = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        classes = (attributes.get("class") or "").split()
        if attributes.get("data-test") == "kedro-pipeline-selector":
            self._in_selector = self.selected_pipeline is None
        elif tag == "g" and "pipeline-node--task" in classes:
            self._node = attributes.get("data-node-fullname")
        elif tag == "text" and "pipeline-node__text" in classes and self._node:
            self._in_label = True

    def handle_data(self, data: str) -> None:
        if self._in_selector and data.strip():
            self.selected_pipeline, self._in_selector = data.strip(), False
        elif self._in_label:
            self.task_labels[self._node] = self.task_labels.get(self._node, "") + data

    def handle_endtag(self, tag: str) -> None:
        if tag == "text" and self._in_label:
            self._in_label, self._node = False, None


def render_flowchart(
    chromium: Chromium, url: str, pipeline_name: str, node_names: set[str]
) -> FlowchartPage:
    """The page at ``url``, rendered again with more time when it does not (yet) show the
    pipeline and its nodes."""
    for budget_ms in RENDER_BUDGETS_MS:
        page = FlowchartPage()
        page.feed(chromium.dump_dom(url, budget_ms=budget_ms))
        shown = page.selected_pipeline in {pipeline_name, pretty_name(pipeline_name)}
        if shown and set(page.task_labels) == node_names:
            break
    return page


@pytest.mark.slow
def test_static_site_shows_every_pipelines_nodes(
    project_copy: Path, chromium: Chromium, tmp_path: Path
):
    """Each registered pipeline, picked with the site's ``?pid=`` query parameter (the
    selector writes the same parameter), draws exactly that pipeline's nodes."""
    built = kedro(project_copy, "viz", "build", timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    site = project_copy / "build"
    expected = registered_nodes(project_copy)
    assert {"sampling", "encoding", "training", "nas", "generalization", "finetuning"} < set(
        expected
    )
    assert {path.name for path in (site / "api" / "pipelines").iterdir()} == set(expected)

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    with background_server(
        [*command, "--directory", str(site)],
        cwd=tmp_path,
        ready_url=f"{base_url}/index.html",
        log_path=tmp_path / "http_server.log",
        timeout_s=30,
    ):
        for pipeline_name, node_names in sorted(expected.items()):
            url = f"{base_url}/?pid={pipeline_name}"
            page = render_flowchart(chromium, url, pipeline_name, node_names)
            # an unknown ``pid`` falls back to __default__ silently: the selector tells
            assert page.selected_pipeline in {pipeline_name, pretty_name(pipeline_name)}, (
                f"the selector shows {page.selected_pipeline!r}, not pipeline {pipeline_name!r}"
            )
            assert set(page.task_labels) == node_names, (
                f"pipeline {pipeline_name!r}: the flowchart draws {sorted(page.task_labels)}, "
                f"Kedro registers {sorted(node_names)}"
            )
            labels = set(page.task_labels.values())
            assert labels in (node_names, {pretty_name(name) for name in node_names}), labels

        screenshot = chromium.screenshot(
            f"{base_url}/?pid=__default__",
            project_copy / "data" / "08_reporting" / "kedro_viz_default.png",
            budget_ms=SCREENSHOT_BUDGET_MS,
        )
    assert_screenshot(screenshot)
