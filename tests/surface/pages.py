"""What a person does in kedro-viz and in the MLflow UI, as Playwright steps: shared by the
browser tests and ``docs/screenshots.py`` so that the screenshots show what the tests check.

Each step clicks what a person clicks and waits, through Playwright's auto-waiting, for what
the page then shows; none sleeps. Where the apps give an element no role or accessible name
(kedro-viz draws its flowchart as SVG), the step names it by the app's own class or
``data-test`` attribute.
"""

from __future__ import annotations

import json
import re
import urllib.parse

from playwright.sync_api import Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

# kedro-viz

TASK_LABELS = ".pipeline-node--task .pipeline-node__text"
NAMESPACE_NODES = ".pipeline-node--modularPipeline"
_SHOWS = """([selector, expected, exact]) => {
    const shown = new Set([...document.querySelectorAll(selector)].map(e => e.textContent));
    return expected.every(name => shown.has(name)) && (!exact || shown.size === expected.length);
}"""


def pipeline_selector(page: Page) -> Locator:
    return page.locator("[data-test='kedro-pipeline-selector']")


def choose_pipeline(page: Page, name: str) -> None:
    """Open the pipeline selector and pick ``name``."""
    selector = pipeline_selector(page)
    selector.get_by_role("button").click()
    selector.get_by_role("option", name=name, exact=True).click()


def expand_all_namespaces(page: Page) -> None:
    """The toolbar's "Expand pipelines": every modular pipeline drawn as its nodes."""
    page.get_by_role("button", name="Expand all modular pipelines").click()


def shown_labels(page: Page, selector: str) -> set[str]:
    return set(page.locator(selector).all_text_contents())


def wait_for_labels(page: Page, selector: str, expected: set[str], *, exact: bool) -> set[str]:
    """The labels of the ``selector`` nodes on the flowchart once it shows every one of
    ``expected`` (and nothing else when ``exact``), or what it shows after the expectation
    timeout (the caller's assertion then says what differs)."""
    try:
        page.wait_for_function(_SHOWS, arg=[selector, sorted(expected), exact])
    except PlaywrightTimeoutError:
        pass
    return shown_labels(page, selector)


def flowchart_node(page: Page, label: str) -> Locator:
    """The node drawn on the flowchart with the label ``label``."""
    return page.locator(".pipeline-node").filter(
        has=page.locator(".pipeline-node__text", has_text=re.compile(f"^{re.escape(label)}$"))
    )


def unfold_json(tree: Locator, *, clicks: int = 20) -> None:
    """Click open every folded object of a JSON tree in a node's panel (kedro-viz folds all
    but the top level). The first click after the panel opens is at times lost, so a click
    that changes nothing within a second or two is made again."""
    folded = tree.locator(".collapsed-icon")
    for _ in range(clicks):
        if folded.count() == 0:
            return
        before = tree.inner_text()
        folded.first.click()
        try:
            expect(tree).not_to_have_text(before, timeout=2000)
        except AssertionError:
            continue
    raise AssertionError(f"the JSON tree stays folded after {clicks} clicks: {tree.inner_text()}")


# MLflow UI

#: The parity plot every predictor's run logs, under the same name in each run (at the top
#: level: MLflow's compare view lists only top-level files).
PARITY_PLOT = "parity.png"


def runs_url(base_url: str, experiment_id: str) -> str:
    """An experiment's training runs (a bare ``#/experiments/<id>`` may open MLflow 3's
    GenAI overview, which shows traces)."""
    return f"{base_url}/#/experiments/{experiment_id}/runs"


def skip_assistant(page: Page) -> None:
    """Have the page's origin remember that the MLflow Assistant was shown once: otherwise
    MLflow opens that chat panel by itself shortly after a browser's first visit, and the page
    beside it reflows (in the compare view the artifact list ends up under the sidebar).
    Call before the first ``goto``."""
    page.add_init_script(
        "if (localStorage.getItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1') === null)"
        " localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1', 'true');"
    )


RUN_NAME_CELL = "[col-id='attributes.`Run Name`']"


def run_link(page: Page, run_name: str) -> Locator:
    """A run's name in the runs table (its Models column may link a model of the same
    name)."""
    return page.locator(RUN_NAME_CELL).get_by_role("link", name=run_name, exact=True)


def run_row(page: Page, run_name: str) -> Locator:
    return page.get_by_role("row").filter(has=run_link(page, run_name))


def show_child_runs(page: Page, parent_name: str) -> None:
    """Unfold the nested runs of run ``parent_name`` in the runs table (the button before
    its name)."""
    run_row(page, parent_name).locator(RUN_NAME_CELL).get_by_role("button").click()


def compare_runs(page: Page, run_names: list[str]) -> None:
    """Tick the runs in the runs table and press Compare."""
    for name in run_names:
        run_row(page, name).get_by_role("checkbox", name=re.compile("row selection")).check()
    page.get_by_role("button", name="Compare").click()
    page.wait_for_url(re.compile(r"#/compare-runs\?"))


def compare_url(base_url: str, run_ids: list[str], experiment_id: str) -> str:
    query = urllib.parse.quote(json.dumps(run_ids))
    return f"{base_url}/#/compare-runs?runs={query}&experiments=[%22{experiment_id}%22]"


def artifact_node(scope: Locator | Page, name: str) -> Locator:
    """An entry of an artifact tree (run page, compare view) by its file or folder name."""
    return scope.locator("[data-testid='artifact-tree-node']").and_(
        scope.get_by_label(name, exact=True)
    )


def open_artifact(page: Page, path: str) -> None:
    """On a run page: the Artifacts tab, then each folder of ``path`` and its file."""
    page.get_by_role("tab", name="Artifacts").click()
    scope: Locator | Page = page
    *folders, file_name = path.split("/")
    for folder in folders:
        artifact_node(scope, folder).click()
        scope = page.locator("li").filter(has=artifact_node(scope, folder)).last
    artifact_node(scope, file_name).click()
