"""benchmarks/gpu_benchmark.py on the CPU: its self-check writes every figure the GPU issue
names, with values in range, using only packages the lent GPU machine has; it refuses CUDA
backends where there is no CUDA, naming the backend; its budget guard says what it skipped."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.helpers import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "benchmarks" / "gpu_benchmark.py"
CUDA = torch.cuda.is_available()
TINY_PROTOCOL = [
    *("--protocol", "warmup_runs=1"),
    *("--protocol", "rounds=1"),
    *("--protocol", "runs_per_round=2"),
    *("--protocol", "interleave=2"),
    *("--protocol", "reference=false"),
]
#: The project's dependencies that the lent GPU machines' image lacks (device KINDS.md).
ABSENT_ON_GPU_MACHINE = ("kedro", "kedro_datasets", "kedro_mlflow", "kedro_viz", "mlflow", "ray")
#: Runs the script as __main__ with those packages made unimportable.
WITHOUT_ABSENT_PACKAGES = """
import importlib.abc, runpy, sys
ABSENT = set(sys.argv[1].split(","))
class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ABSENT:
            raise ModuleNotFoundError(f"No module named {name!r} on the GPU machine", name=name)
        return None
sys.meta_path.insert(0, Absent())
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.fixture(scope="module")
def gpu_benchmark():
    """The script as a module (registered while loaded: its dataclasses look it up)."""
    spec = importlib.util.spec_from_file_location("gpu_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def _strict_json(path):
    def refuse(constant):
        raise ValueError(f"{path} holds {constant}, which is not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


@pytest.fixture(scope="module")
def self_check(tmp_path_factory):
    """The CPU self-check, run as the GPU session runs the script: a fresh process from the
    repository root, sources on PYTHONPATH, without the packages the GPU machine lacks."""
    out = tmp_path_factory.mktemp("gpu_benchmark") / "gpu.json"
    args = [
        *("--backends", "torch-cpu", "onnxruntime-cpu"),
        *("--subnets", "4", "--batch-sizes", "1", "2", "--resolutions", "128", "160", "176"),
        *TINY_PROTOCOL,
        *("--out", str(out)),
    ]
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT / "src")}
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_ABSENT_PACKAGES, ",".join(ABSENT_ON_GPU_MACHINE)]
        + [str(SCRIPT), *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return _strict_json(out), done.stdout


def test_self_check_reports_noise_and_throughput_for_every_backend_and_batch(self_check):
    report, _ = self_check
    assert report["complete"] is True
    assert report["failures"] == {} and report["skipped"] == []
    rows = {(r["backend"], r["batch_size"]): r for r in report["results"]}
    assert set(rows) == {(b, n) for b in ("torch-cpu", "onnxruntime-cpu") for n in (1, 2)}
    for row in rows.values():
        assert row["subnets"] == 4 and row["pairs"] == 4 and row["measurements"] == 8
        assert 0 <= row["median_rel_diff"] <= row["p90_rel_diff"]
        assert row["subnets_per_minute"] > 0
        assert 0 < row["latency_ms"]["min"] <= row["latency_ms"]["median"]
        assert row["latency_ms"]["median"] <= row["latency_ms"]["max"]
        assert row["failure"] is None


def test_self_check_keeps_every_pass_of_every_subnet(self_check):
    report, _ = self_check
    assert len(report["subnet_archs"]) == 4
    for passes in report["latencies_ms"].values():
        assert np.array(passes).shape == (2, 4)
        assert all(v > 0 for p in passes for v in p)
    assert report["throughput"]["subnets_measured_by_all"] == 4
    assert report["throughput"]["wall_seconds"] > 0


def test_self_check_reports_spearman_between_backends_per_batch_size(self_check):
    report, _ = self_check
    assert [(r["batch_size"], r["backends"]) for r in report["spearman"]] == [
        (1, ["torch-cpu", "onnxruntime-cpu"]),
        (2, ["torch-cpu", "onnxruntime-cpu"]),
    ]
    for row in report["spearman"]:
        assert row["subnets"] == 4
        assert -1 <= row["spearman"] <= 1


def test_self_check_reports_latency_against_resolution_for_one_subnet(self_check):
    report, _ = self_check
    curve = report["resolution_curve"]
    assert curve["resolutions"] == [128, 160, 176]
    assert curve["arch"]["ks"] == [5] * 20 and "r" not in curve["arch"]
    assert len(curve["rows"]) == 4
    for row in curve["rows"]:
        assert len(row["latency_ms"]) == 3 and all(v > 0 for v in row["latency_ms"])
        assert row["ratio_to_smallest"][0] == 1
        assert math.isfinite(row["exponent"])


def test_self_check_describes_the_device_and_prints_the_tables(self_check):
    report, stdout = self_check
    device = report["device"]
    assert device["torch"] == torch.__version__
    assert {"gpu", "driver", "cuda_runtime", "cudnn", "cpu_model", "python"} <= set(device)
    assert report["protocols"]["torch-cpu@2"]["batch_size"] == 2
    assert report["settings"]["seed"] == 0 and report["settings"]["passes"] == 2
    for heading in ("noise (median)", "Spearman between backends", "against resolution"):
        assert heading in stdout


@pytest.mark.skipif(CUDA, reason="checks the refusal shown on machines without CUDA")
@pytest.mark.parametrize("backend", ["torch-cuda", "torch-cuda-graph"])
def test_cuda_backends_are_refused_by_name_without_cuda(gpu_benchmark, tmp_path, backend):
    out = tmp_path / "gpu.json"
    with pytest.raises(SystemExit) as refused:
        gpu_benchmark.main(["--backends", "torch-cpu", backend, "--out", str(out)])
    message = str(refused.value.code)
    assert f"backend '{backend}' cannot run here: no CUDA device is available" in message
    assert "--backends torch-cpu" in message
    assert not out.exists()


def test_budget_guard_keeps_the_first_group_and_says_what_it_skipped(gpu_benchmark, tmp_path):
    out = tmp_path / "gpu.json"
    argv = ["--backends", "torch-cpu", "--subnets", "5", "--batch-sizes", "1"]
    argv += ["--resolutions", "128", "--budget-minutes", "0", *TINY_PROTOCOL, "--out", str(out)]
    assert gpu_benchmark.main(argv) == 0
    report = _strict_json(out)
    (row,) = report["results"]
    assert row["subnets"] == 2 and row["pairs"] == 2
    assert report["skipped"] and report["skipped"][0].startswith("subnets 3..5 of 5")
    assert report["latencies_ms"]["torch-cpu@1"][1][2:] == [None, None, None]
    assert report["spearman"] == []


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["--backends", "torch-cpu", "torch-cpu"], "--backends names a value twice"),
        (["--batch-sizes", "1", "1"], "--batch-sizes names a value twice"),
        (["--passes", "1"], "--passes must be >= 2"),
        (["--subnets", "0"], "--subnets must be >= 1"),
        (["--protocol", "batch_size=4"], "set batch sizes with --batch-sizes"),
        (["--protocol", "rounds=0"], "parameter 'protocol.rounds' must be an integer >= 1"),
        (["--protocol", "colour=red"], "unknown parameter 'protocol.colour'"),
        (["--resolutions", "130"], "field 'r' has value 130"),
        (["--backends", "lut"], "invalid choice: 'lut'"),
    ],
)
def test_bad_arguments_are_refused_by_name(gpu_benchmark, capsys, argv, complaint):
    with pytest.raises(SystemExit) as refused:
        gpu_benchmark.parse_args(argv)
    assert refused.value.code == 2
    assert complaint in capsys.readouterr().err


def test_repeat_noise_pairs_consecutive_passes_of_measured_subnets(gpu_benchmark):
    passes = np.array([[1.0, 2.0, 4.0, np.nan], [1.1, 2.0, 3.0, 5.0]])
    noise = gpu_benchmark.repeat_noise(passes)
    assert noise["pairs"] == 3
    assert noise["median_rel_diff"] == pytest.approx(0.1)
    assert noise["p90_rel_diff"] == pytest.approx(np.percentile([0.1, 0.0, 0.25], 90))


def test_spearman_ranks_and_says_when_it_cannot(gpu_benchmark):
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert gpu_benchmark.spearman(x, x**3) == pytest.approx(1.0)
    assert gpu_benchmark.spearman(x, -x) == pytest.approx(-1.0)
    assert gpu_benchmark.spearman(x, np.ones(4)) is None
    assert gpu_benchmark.spearman(x[:1], x[:1]) is None


def test_growth_exponent_is_two_when_latency_follows_the_pixels(gpu_benchmark):
    grown = gpu_benchmark.growth([128, 256, 192], [1.0, 4.0, 2.25])
    assert grown["exponent"] == pytest.approx(2.0)
    assert grown["ratio_to_smallest"] == pytest.approx([1.0, 4.0, 2.25])
    assert gpu_benchmark.growth([128], None)["exponent"] is None
