"""The documentation followed top to bottom, as a person with a fresh clone would: every
fenced ```` ```bash tested ```` block runs, in one copy of the project, on tiny parameters
(each `kedro run` and `make run` gets the `TINY` overrides of its pipelines; a server target
is started, asked for its page and stopped; `<head>` is this machine).

The order is README.md first, then the docs pages in the order of the `nav` of mkdocs.yml:
that list is the one place it is defined (the pages build on each other: sampling, then the
seed's files, training, finetuning, generalization, nas). A docs page with tested blocks that
the nav leaves out is an error, so no block is silently skipped."""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.helpers import (
    FAST_PROTOCOL,
    PROJECT_ROOT,
    free_port,
    params_arg,
    session_processes,
    stop_session,
    viz_port,
)

README = PROJECT_ROOT / "README.md"
MKDOCS = PROJECT_ROOT / "mkdocs.yml"
VENV = Path(sys.executable).parent.parent
#: Per pipeline, the parameters that make its run take seconds.
TINY = {
    # 30 subnets: the training pipeline's smallest dataset (training.min_rows)
    "sampling": f"sampling.num_subnets=30,{params_arg('sampling.protocol', FAST_PROTOCOL)}",
    "training": "training.config.epochs=2,training.tune.num_samples=2,"
    "training.tune.search_space.epochs=[choice,[2]],training.tune.grace_period=1",
    "nas": "nas.population_size=8,nas.generations=3",
    "finetuning": "finetuning.ks=[5],finetuning.draws=[0],finetuning.samplers=[random],"
    "finetuning.methods=[calibrate,embedding],finetuning.adapt_k=5",
    "generalization": "generalization.model.epochs=1,generalization.held_out=[Tesla_P40_GPU]",
}
DEFAULT_PIPELINES = ("sampling", "training", "nas")
RAY_ENV = {
    "RAY_AUTH_MODE": "token",
    "RAY_AUTH_TOKEN": secrets.token_hex(16),
    "RAY_USAGE_STATS_ENABLED": "0",
}


def shell_blocks(text: str) -> list[list[str]]:
    """The commands of every ```` ```bash tested ```` block, comments stripped."""
    blocks = re.findall(r"^```bash tested\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    return [
        [re.sub(r"\s+#\s.*$", "", line).strip() for line in block.splitlines() if line.strip()]
        for block in blocks
    ]


def docs_dir(config: Path = MKDOCS) -> Path:
    return config.parent / yaml.safe_load(config.read_text()).get("docs_dir", "docs")


def nav_pages(config: Path = MKDOCS) -> list[Path]:
    """The pages of the mkdocs.yml `nav`, in its order (sections flattened)."""

    def walk(entry: object) -> list[str]:
        if isinstance(entry, str):
            return [] if "://" in entry else [entry]
        if isinstance(entry, dict):
            return [page for value in entry.values() for page in walk(value)]
        if isinstance(entry, list):
            return [page for item in entry for page in walk(item)]
        raise ValueError(f"{config}: unexpected nav entry {entry!r}")

    return [docs_dir(config) / page for page in walk(yaml.safe_load(config.read_text())["nav"])]


def pages_in_order(readme: Path = README, config: Path = MKDOCS) -> list[Path]:
    """README.md, then the nav's pages; refuses a docs page with tested blocks outside the nav
    (its commands would never run) and a nav entry whose file is missing."""
    pages = nav_pages(config)
    missing = [str(page) for page in pages if not page.is_file()]
    if missing:
        raise ValueError(f"{config}: the nav names pages that do not exist: {missing}")
    left_out = sorted(
        str(page.relative_to(config.parent))
        for page in docs_dir(config).rglob("*.md")
        if page not in pages and shell_blocks(page.read_text())
    )
    if left_out:
        raise ValueError(
            f"{left_out} have `bash tested` blocks but are not in the nav of {config.name}, "
            "which orders the tested blocks: add them there"
        )
    return [readme, *pages]


def documentation_blocks() -> list[tuple[Path, list[str]]]:
    """Every tested block of the documentation with its page, in the order they run."""
    return [(page, block) for page in pages_in_order() for block in shell_blocks(page.read_text())]


def with_tiny_params(command: str) -> str:
    """A `kedro run` with the tiny parameters of its pipelines after its own (they win)."""
    pipelines = re.search(r"--pipelines? (\S+)", command)
    names = pipelines.group(1).split(",") if pipelines else list(DEFAULT_PIPELINES)
    tiny = [TINY[name] for name in names if name in TINY]
    if "training.tune.enabled=true" in command:  # one tuned dataset is enough to show it
        tiny.append("training.datasets=[Tesla_P40_GPU_ofa]")
    if not tiny:
        return command
    given = re.search(r'--params "([^"]*)"', command)
    if given:
        return command.replace(given.group(0), f'--params "{given.group(1)},{",".join(tiny)}"')
    return f'{command} --params "{",".join(tiny)}"'


class ReadmeRunner:
    """Runs README commands in a project copy, the way a shell in its root would."""

    def __init__(self, root: Path, ray_port: int, ray_tmp: Path) -> None:
        self.root = root
        self.ray_port = ray_port
        #: Sessions of commands that left processes running (the Ray nodes they started).
        self.sessions: list[int] = []
        self.env = {
            **os.environ,
            **RAY_ENV,
            "RAY_TMPDIR": str(ray_tmp),  # this run's clusters, apart from any other on the host
            "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ['PATH']}",
            "KEDRO_DISABLE_TELEMETRY": "true",
            "COLUMNS": "200",
        }
        for variable in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME"):
            self.env.pop(variable, None)  # the project's own sqlite:///mlflow.db and experiment
        self.make = f"make -o {VENV}/.installed -o {VENV}/.installed-test VENV={VENV}"

    def translate(self, command: str) -> str:
        command = command.replace("<head>", "127.0.0.1").replace("6379", str(self.ray_port))
        if command.startswith("make run"):
            arguments = with_tiny_params("kedro run").removeprefix("kedro run ")
            return f"{self.make} run ARGS={shlex.quote(arguments)}"
        if command.startswith("make "):
            return command.replace("make", self.make, 1)
        return " && ".join(
            with_tiny_params(part) if part.startswith("kedro run") else part
            for part in (piece.strip() for piece in command.split("&&"))
        )

    def run(self, command: str) -> None:
        if command == "make test":  # the suite running this test: check what it runs
            dry = self.shell(f"{self.make} -n test")
            assert "-m pytest" in dry.stdout, dry.stdout
            return
        if command.startswith(("make mlflow-ui", "make viz")):
            self.serve(command)
            return
        result = self.shell(self.translate(command))
        assert result.returncode == 0, (
            f"README command failed: {command}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )

    def shell(self, command: str) -> subprocess.CompletedProcess:
        """Run ``command`` in a session of its own; one that leaves processes behind (`ray
        start`) is remembered, for `stop` to end exactly those."""
        process = subprocess.Popen(
            ["bash", "-c", command],
            cwd=self.root,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, stderr = process.communicate(timeout=900)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            if session_processes(process.pid):
                self.sessions.append(process.pid)
        return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)

    def stop(self) -> None:
        """End what the README's commands left running (not `ray stop`, which would stop
        every Ray process on the machine)."""
        for session in self.sessions:
            stop_session(session)

    def serve(self, command: str) -> None:
        """Start a server target on a free port, wait for its page, stop it."""
        variable = "MLFLOW_PORT" if "mlflow" in command else "VIZ_PORT"
        port = free_port() if variable == "MLFLOW_PORT" else viz_port()
        server = subprocess.Popen(
            ["bash", "-c", f"{self.translate(command)} {variable}={port}"],
            cwd=self.root,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
                        assert page.status == 200
                        assert b"<html" in page.read().lower()
                        return
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        output = server.stdout.read() if server.poll() is not None else ""
                        pytest.fail(f"`{command}` did not serve http://127.0.0.1:{port}/\n{output}")
                    time.sleep(1)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)


def test_the_tested_blocks_of_the_readme_and_the_docs_pages_are_found_in_order():
    blocks = documentation_blocks()
    commands = [command for _, block in blocks for command in block]
    readme = [command for page, block in blocks if page == README for command in block]
    assert commands[:2] == ["make run", "make test"] and readme == commands[:2]
    assert sum(command.startswith("kedro run") for command in commands) >= 8

    def first(text: str) -> int:
        return next(at for at, command in enumerate(commands) if text in command)

    # The flow the blocks build on: measured and seed data before training, training first
    assert first("--pipelines sampling") < first("cp ../shared/seed_data/latency/")
    assert first("cp ../shared/seed_data/latency/") < first("--pipelines encoding,training")
    assert first("--pipelines encoding,training") < min(
        first(f"--pipelines {name}") for name in ("finetuning", "generalization", "nas")
    )


def test_a_docs_page_with_tested_blocks_outside_the_nav_is_refused(tmp_path: Path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "listed.md").write_text("# Listed\n\n```bash tested\nmake run\n```\n")
    (tmp_path / "docs" / "plain.md").write_text("# Plain\n\n```bash\nls\n```\n")
    (tmp_path / "mkdocs.yml").write_text("site_name: t\nnav:\n  - Listed: listed.md\n")
    readme = tmp_path / "README.md"
    assert pages_in_order(readme, tmp_path / "mkdocs.yml") == [readme, tmp_path / "docs/listed.md"]
    (tmp_path / "docs" / "extra.md").write_text("```bash tested\nkedro run\n```\n")
    with pytest.raises(ValueError, match=r"\['docs/extra.md'\] have `bash tested` blocks"):
        pages_in_order(readme, tmp_path / "mkdocs.yml")


def test_a_nav_entry_without_its_page_is_refused(tmp_path: Path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "mkdocs.yml").write_text("site_name: t\nnav:\n  - Gone: gone.md\n")
    with pytest.raises(ValueError, match="do not exist"):
        pages_in_order(tmp_path / "README.md", tmp_path / "mkdocs.yml")


@pytest.mark.slow
def test_the_readme_top_to_bottom(project_copy: Path, shared_dir: Path):
    shutil.copy2(PROJECT_ROOT / "Makefile", project_copy)
    shared_link = project_copy.parent / "shared"
    if not shared_link.exists():
        shared_link.symlink_to(shared_dir.resolve())
    ray_tmp = Path(tempfile.mkdtemp(prefix="ofa-ray-"))  # short: Ray's socket paths are below
    runner = ReadmeRunner(project_copy, free_port(), ray_tmp)
    try:
        for _page, block in documentation_blocks():
            for command in block:
                runner.run(command)
    finally:
        runner.stop()
        shutil.rmtree(ray_tmp, ignore_errors=True)
    reporting = project_copy / "data" / "08_reporting"
    for produced in (
        "predictor_metrics.csv",
        "nas_pareto.png",
        "finetuning_curves.csv",
        "generalization_leave_one_out.csv",
    ):
        assert (reporting / produced).is_file(), produced
    assert (project_copy / "mlflow.db").is_file()
