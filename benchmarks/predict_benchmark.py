"""The public predict path against the seed's, side by side in one run.

1. ``LatencyPredictor.load(<seed RTX checkpoint>).predict(...)`` on 10,000 of the seed's dicts
   and on the same 10,000 ``child_arch`` strings, against the seed's way: one-hot built in
   Python and one forward per subnet (`seed_baseline.seed_predict_one`; for strings the seed
   ran ``eval`` on the text first, here the safe ``ast.literal_eval``). Also the per-item path
   this project used before (``Arch.parse`` of every item, genes stacked as int64) followed by
   the same batched forward, and the cost per item of parsing each way.
2. Bytes of the arrays of ``get_space("ofa").sample_batch(1_000_000, seed=0)``.
3. Sampling, mutation, crossover, encoding and batched prediction timings.

Every time is the best of 3.

    python benchmarks/predict_benchmark.py [--shared ../shared]
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import torch
from seed_baseline import seed_predict_one
from timing import timed

from ofa_latency_kedro.encoding import Encoder
from ofa_latency_kedro.encoding.encoders import analytic, joint_indices, seed128
from ofa_latency_kedro.measurement.protocol import available_cpus
from ofa_latency_kedro.predictors import LatencyPredictor
from ofa_latency_kedro.search_space import Arch, ArchBatch, get_space
from ofa_latency_kedro.search_space.network import block_cost_table

RESULTS = Path(__file__).resolve().parent / "results"
CHECKPOINT = Path("seed_data") / "checkpoints" / "checkpoint_RTX_2080_Ti_GPU_ofa.pt"
DATASET = Path("seed_data") / "latency" / "RTX_2080_Ti_GPU_ofa.csv"
GENE_FIELDS = ("ks", "e", "d", "r", "width_mult")


def per_item_batch(items: list[Any]) -> ArchBatch:
    """The path before whole lists were read at once: ``Arch.parse`` of every item, then the
    genes stacked into int64 arrays."""
    parsed = [Arch.parse(item) for item in items]
    n, width = len(parsed), len(parsed[0].genes)
    genes = np.fromiter(
        chain.from_iterable(a.genes for a in parsed), dtype=np.int64, count=n * width
    ).reshape(n, width)
    return ArchBatch(
        ks=genes[:, :20],
        e=genes[:, 20:40],
        d=genes[:, 40:45],
        r=genes[:, -1],
        width_mult=np.array([a.width_mult for a in parsed], dtype=np.float64),
    )


def seed_dicts_way(model: torch.nn.Module, dicts: list[dict[str, Any]]) -> np.ndarray:
    return np.array([seed_predict_one(model, child_arch) for child_arch in dicts])


def seed_strings_way(model: torch.nn.Module, texts: list[str]) -> np.ndarray:
    return np.array([seed_predict_one(model, ast.literal_eval(text)) for text in texts])


def prediction(shared: Path) -> dict[str, Any]:
    with open(shared / DATASET, newline="") as handle:
        texts = [row["child_arch"] for row in csv.DictReader(handle)]
    dicts = [ast.literal_eval(text) for text in texts]
    predictor = LatencyPredictor.load(shared / CHECKPOINT)
    result: dict[str, Any] = {"subnets": len(texts)}
    for kind, items, seed_way in (
        ("dicts", dicts, seed_dicts_way),
        ("strings", texts, seed_strings_way),
    ):
        seed_s, seed_values = timed(seed_way, predictor.module, items)
        predict_s, values = timed(predictor.predict, items)
        per_item_s, _ = timed(lambda items=items: predictor.predict_batch(per_item_batch(items)))
        parse_s, batch = timed(ArchBatch.from_archs, items)
        per_item_parse_s, reference = timed(per_item_batch, items)
        assert batch.to_archs() == reference.to_archs()
        assert np.allclose(seed_values, values, rtol=1e-4, atol=1e-4)
        result[kind] = {
            "seed_way_s": seed_s,
            "predict_s": predict_s,
            "per_item_predict_s": per_item_s,
            "ratio": seed_s / predict_s,
            "per_item_ratio": seed_s / per_item_s,
            "parse_us": parse_s / len(items) * 1e6,
            "per_item_parse_us": per_item_parse_s / len(items) * 1e6,
        }
    # The strictest figure for strings: against the seed's way on dicts, which parses nothing.
    result["strings"]["ratio_vs_seed_dicts"] = (
        result["dicts"]["seed_way_s"] / result["strings"]["predict_s"]
    )
    forward_s, _ = timed(predictor.predict_batch, ArchBatch.from_archs(dicts))
    result["predict_batch_s"] = forward_s
    return result


def population(shared: Path) -> dict[str, Any]:
    space = get_space("ofa")
    sample_s, batch = timed(space.sample_batch, 1_000_000, 0)
    nbytes = {name: getattr(batch, name).nbytes for name in GENE_FIELDS}
    dtypes = {name: str(getattr(batch, name).dtype) for name in GENE_FIELDS}
    small, other = batch[:100_000], batch[100_000:200_000]
    predictor = LatencyPredictor.load(shared / CHECKPOINT)
    timings = {
        "sample_batch 1,000,000": sample_s,
        "mutate_batch 1,000,000": timed(space.mutate_batch, batch, 0.1, 1)[0],
        "crossover_batch 1,000,000": timed(space.crossover_batch, batch, batch[::-1], 2)[0],
        "seed128 100,000": timed(seed128, small)[0],
        "analytic 100,000": timed(analytic, small)[0],
        "joint_indices 100,000": timed(joint_indices, small)[0],
        "block_cost_table 100,000": timed(block_cost_table, small)[0],
        "Encoder('analytic+seed128').encode 100,000": timed(
            Encoder("analytic+seed128").encode, small
        )[0],
        "packed_keys 100,000": timed(small.packed_keys)[0],
        "unique_index 100,000": timed(ArchBatch.concatenate([small, other]).unique_index)[0],
        "to_frame + from_frame 100,000": timed(lambda: ArchBatch.from_frame(small.to_frame()))[0],
        "predict_batch (seed RTX checkpoint) 100,000": timed(predictor.predict_batch, small)[0],
    }
    return {"bytes": nbytes, "dtypes": dtypes, "timings_s": timings}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shared", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared"
    )
    args = parser.parse_args()
    torch.set_num_threads(available_cpus())
    print(f"{available_cpus()} CPU cores, torch {torch.__version__}, numpy {np.__version__}")

    speed = prediction(args.shared)
    print(f"\nPredicting {speed['subnets']:,} seed subnets, seed RTX 2080 Ti checkpoint\n")
    print("| input | seed's way | predict() | vs seed | per-item path | vs seed |")
    print("|---|---|---|---|---|---|")
    for kind in ("dicts", "strings"):
        row = speed[kind]
        print(
            f"| {kind} | {row['seed_way_s']:.3f} s | {row['predict_s'] * 1e3:.1f} ms | "
            f"{row['ratio']:.1f}x | {row['per_item_predict_s'] * 1e3:.1f} ms | "
            f"{row['per_item_ratio']:.1f}x |"
        )
    print(
        f"\npredict() on strings against the seed's way on dicts (no parsing in it): "
        f"{speed['strings']['ratio_vs_seed_dicts']:.1f}x"
    )
    print(f"Batched forward alone (predict_batch, parsed): {speed['predict_batch_s'] * 1e3:.1f} ms")
    print("\n| parse cost per item | ArchBatch.from_archs | per-item Arch.parse + int64 stack |")
    print("|---|---|---|")
    for kind in ("dicts", "strings"):
        row = speed[kind]
        print(f"| {kind[:-1]} | {row['parse_us']:.2f} us | {row['per_item_parse_us']:.2f} us |")

    held = population(args.shared)
    total = sum(held["bytes"].values())
    print('\nArrays of get_space("ofa").sample_batch(1_000_000, seed=0)\n')
    print("| array | dtype | MB |")
    print("|---|---|---|")
    for name in GENE_FIELDS:
        print(f"| {name} | {held['dtypes'][name]} | {held['bytes'][name] / 1e6:.1f} |")
    print(f"| total | | {total / 1e6:.1f} |")
    print("\n| operation | best of 3 |")
    print("|---|---|")
    for name, seconds in held["timings_s"].items():
        print(f"| {name} | {seconds * 1e3:.1f} ms |")

    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "predict_benchmark.json"
    out.write_text(json.dumps({"prediction": speed, "population": held}, indent=2))
    print(f"\nsaved {out}")


if __name__ == "__main__":
    main()
