"""The static kedro-viz site (`make viz-build`) as a person uses it: served over HTTP, drawn by
a real browser, clicked through: the pipeline selector, a node's panel, a namespace."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kedro.framework.startup import bootstrap_project
from playwright.sync_api import Page, expect

from ofa_latency_kedro.pipeline_registry import DEFAULT_PIPELINES
from tests.helpers import copy_project, kedro
from tests.surface import pages
from tests.surface.servers import static_site

pytestmark = pytest.mark.slow

PIPELINES = {"sampling", "encoding", "training", "nas", "finetuning", "generalization"}
#: Parameters the site's project sets in conf/local (both differ from the defaults, so the
#: node panel can only show them by reading the project's configuration).
NAS_PARAMETERS = "nas:\n  population_size: 40\n  constraints_ms: [12, 18]\n"


@dataclass(frozen=True)
class Node:
    """A registered node as kedro-viz labels it (its name without its namespace)."""

    label: str
    inputs: tuple[str, ...]


@dataclass(frozen=True)
class Site:
    url: str
    nodes: dict[str, list[Node]]  # pipeline name -> its nodes, as Kedro registers them


def registered_nodes(project: Path) -> dict[str, list[Node]]:
    bootstrap_project(project)
    from kedro.framework.project import pipelines

    def label(node) -> str:
        return node.name.removeprefix(f"{node.namespace}.") if node.namespace else node.name

    return {
        name: [Node(label(node), tuple(node.inputs)) for node in pipeline.nodes]
        for name, pipeline in pipelines.items()
    }


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """`kedro viz build` of a project copy, served on loopback."""
    folder = tmp_path_factory.mktemp("kedro_viz")
    project = copy_project(folder / "project")
    (project / "conf" / "local" / "parameters_nas.yml").write_text(NAS_PARAMETERS)
    built = kedro(project, "viz", "build", timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    with static_site(project / "build", log_path=folder / "http_server.log") as url:
        yield Site(url, registered_nodes(project))


def test_the_selector_lists_every_pipeline_and_switching_draws_its_nodes(site: Site, page: Page):
    """The selector offers the six pipelines (and ``__default__``); picking one draws exactly
    the nodes Kedro registers for it (namespaces expanded)."""
    assert set(site.nodes) == PIPELINES | {"__default__"}
    page.goto(site.url)
    pages.pipeline_selector(page).get_by_role("button").click()
    options = pages.pipeline_selector(page).get_by_role("option")
    expect(options).to_have_count(len(site.nodes))
    assert set(options.all_inner_texts()) == set(site.nodes)
    pages.pipeline_selector(page).get_by_role("button").click()  # close it again

    pages.expand_all_namespaces(page)
    for name in sorted(PIPELINES):
        pages.choose_pipeline(page, name)
        expect(pages.pipeline_selector(page).get_by_role("button")).to_have_text(name)
        expected = {node.label for node in site.nodes[name]}
        shown = pages.wait_for_labels(page, pages.TASK_LABELS, expected, exact=True)
        assert shown == expected, f"pipeline {name!r}: the flowchart draws {sorted(shown)}"


def test_clicking_a_node_opens_its_panel_with_the_projects_parameters(site: Site, page: Page):
    """The panel of a NAS node shows the ``nas`` parameters this project sets in conf/local."""
    node = min(
        (node for node in site.nodes["nas"] if "params:nas" in node.inputs),
        key=lambda node: node.label,
    )
    page.goto(site.url)
    pages.expand_all_namespaces(page)
    pages.choose_pipeline(page, "nas")
    pages.flowchart_node(page, node.label).click()

    panel = page.locator(".pipeline-metadata")
    expect(panel.get_by_role("heading", name=node.label, exact=True)).to_be_visible()
    parameters = panel.locator("dd[data-label='Parameters:']")
    expect(parameters).to_contain_text('"nas"')
    pages.unfold_json(parameters)
    values = parameters.locator(".variable-row")
    expect(values.filter(has_text="population_size")).to_contain_text("40")
    expect(values.filter(has_text="0:")).to_contain_text("12")
    expect(values.filter(has_text="1:")).to_contain_text("18")


def test_the_default_graph_shows_pipelines_as_namespaces_that_expand_when_clicked(
    site: Site, page: Page
):
    """``__default__`` opens collapsed to its stages, one namespace per pipeline; clicking
    ``training`` draws the training nodes in its place."""
    page.goto(site.url)
    expect(pages.pipeline_selector(page).get_by_role("button")).to_have_text("__default__")
    namespaces = set(DEFAULT_PIPELINES)
    shown = pages.wait_for_labels(page, pages.NAMESPACE_NODES, namespaces, exact=True)
    assert shown == namespaces, f"the default graph shows namespaces {sorted(shown)}"
    assert pages.shown_labels(page, pages.TASK_LABELS) == set(), "nodes outside a namespace"

    pages.flowchart_node(page, "training").click()
    expected = {node.label for node in site.nodes["training"]}
    shown = pages.wait_for_labels(page, pages.TASK_LABELS, expected, exact=True)
    assert shown == expected, f"training, expanded, draws {sorted(shown)}"
    remaining = pages.wait_for_labels(
        page, pages.NAMESPACE_NODES, namespaces - {"training"}, exact=True
    )
    assert remaining == namespaces - {"training"}, remaining
