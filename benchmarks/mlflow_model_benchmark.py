"""What a predictor as an MLflow Model costs: logging it into a run (`log_predictor`: the
pyfunc model with its code, checkpoint, signature and input example, the example run once
through the model), registering a version and moving ``champion`` (`register_predictor`),
loading the champion through ``mlflow.pyfunc`` and predicting 1,000 subnets through it and
directly. A small predictor of the seed's RTX 2080 Ti file, a temporary SQLite store; each
step ``--repeats`` times, median (min-max) printed.

    python benchmarks/mlflow_model_benchmark.py [--shared ../shared] [--repeats 10]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import mlflow
import pandas as pd

from ofa_latency_kedro import mlflow_models
from ofa_latency_kedro.encoding import load_latency_csv
from ofa_latency_kedro.predictors import train_predictor
from ofa_latency_kedro.search_space import get_space

NAME = "RTX_2080_Ti_GPU_ofa"


def summary(seconds: list[float]) -> str:
    return (
        f"{statistics.median(seconds) * 1000:7.1f} ms "
        f"({min(seconds) * 1000:.1f}-{max(seconds) * 1000:.1f}, n={len(seconds)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path(__file__).parents[1].parent / "shared")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="mlflow_model_benchmark_"))
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    mlflow.create_experiment("bench", artifact_location=str(folder / "mlartifacts"))
    mlflow.set_experiment("bench")
    csv = args.shared / "seed_data" / "latency" / f"{NAME}.csv"
    predictor = train_predictor(load_latency_csv(csv).head(600), config={"epochs": 5})
    checkpoint = predictor.save(folder / f"{NAME}.pt")
    logging, registering = [], []
    for _ in range(args.repeats):
        with mlflow.start_run() as run:
            started = time.perf_counter()
            model = mlflow_models.log_predictor(run.info.run_id, NAME, predictor, checkpoint)
            logged = time.perf_counter()
            mlflow_models.register_predictor(run.info.run_id, NAME, predictor, model)
            logging.append(logged - started)
            registering.append(time.perf_counter() - logged)
    frame = pd.DataFrame(
        {"child_arch": [a.to_seed_string() for a in get_space("ofa").sample(1000, seed=1)]}
    )
    loading, through_mlflow, direct = [], [], []
    for _ in range(args.repeats):
        started = time.perf_counter()
        served = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
        loading.append(time.perf_counter() - started)
        started = time.perf_counter()
        served.predict(frame)
        through_mlflow.append(time.perf_counter() - started)
        started = time.perf_counter()
        predictor.predict(frame["child_arch"].tolist())
        predictor.predict_interval(frame["child_arch"].tolist())
        direct.append(time.perf_counter() - started)
    print(f"log_predictor (one MLflow Model):      {summary(logging)}")
    print(f"register_predictor (version, champion): {summary(registering)}")
    print(f"pyfunc.load_model(models:/...@champion): {summary(loading)}")
    print(f"predict 1,000 subnets through pyfunc:   {summary(through_mlflow)}")
    print(f"predict + predict_interval, directly:   {summary(direct)}")


if __name__ == "__main__":
    main()
