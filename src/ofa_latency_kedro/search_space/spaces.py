"""The OFA and CompOFA search spaces: membership, counting, seeded sampling, mutation and
crossover. Population operations work on `ArchBatch` arrays; the single-Arch methods wrap them.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ofa_latency_kedro.search_space.arch import Arch, ArchError, ArchLike
from ofa_latency_kedro.search_space.batch import GENE_DTYPES, ArchBatch
from ofa_latency_kedro.search_space.constants import (
    COMPOFA_EXPAND_FOR_DEPTH,
    COMPOFA_FIXED_KERNELS,
    DEPTH_CHOICES,
    EXPAND_CHOICES,
    KERNEL_CHOICES,
    MAX_DEPTH,
    NUM_BLOCKS,
    NUM_STAGES,
    OFA_RESOLUTIONS,
    SEED_RESOLUTIONS,
    WIDTH_CHOICES,
)

SPACE_NAMES = ("ofa", "compofa", "compofa-elastic")
#: The names the seed's dataset files use for the same spaces.
SPACE_ALIASES = {"fixedkernelcompofa": "compofa", "elastickernelcompofa": "compofa-elastic"}
RESOLUTION_SETS = {"seed": SEED_RESOLUTIONS, "ofa": OFA_RESOLUTIONS}
#: Above this many distinct subnets `SearchSpace.enumerate` refuses to list them.
MAX_ENUMERATION = 100_000
#: Rejection sampling of distinct subnets draws this many at a time (fixed, so that the
#: sequence of subnets does not depend on how many are asked for).
_DRAW_BLOCK = 1024

_EXPAND_FOR_DEPTH = np.zeros(max(DEPTH_CHOICES) + 1, dtype=GENE_DTYPES["e"])
for _depth, _expand in COMPOFA_EXPAND_FOR_DEPTH.items():
    _EXPAND_FOR_DEPTH[_depth] = _expand

SeedLike = int | np.random.Generator | None


def as_generator(seed: SeedLike) -> np.random.Generator:
    """A NumPy generator from a seed (reproducible), an existing generator, or None."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def _choice(
    rng: np.random.Generator, values: Sequence[int], shape: tuple[int, ...], gene: str
) -> np.ndarray:
    """Uniform draws of ``values`` in the gene's dtype (the indices stay int64: the same
    random stream as ever)."""
    return np.asarray(values, dtype=GENE_DTYPES[gene])[rng.integers(0, len(values), size=shape)]


@dataclass(frozen=True)
class SearchSpace:
    """A family of OFA-MobileNetV3 subnets.

    ``fixed_kernels`` pins every block of a stage to one kernel size (fixed-kernel CompOFA);
    ``coupled_expand`` ties every block's expand ratio to its stage's depth (CompOFA).
    """

    name: str
    resolutions: tuple[int, ...] = SEED_RESOLUTIONS
    width_mult: float = 1.0
    fixed_kernels: tuple[int, ...] | None = None
    coupled_expand: bool = False
    _fixed_ks_row: np.ndarray | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.width_mult not in WIDTH_CHOICES:
            raise ValueError(
                f"width_mult {self.width_mult} is not one of {', '.join(map(str, WIDTH_CHOICES))}"
            )
        bad = sorted(set(self.resolutions) - set(OFA_RESOLUTIONS))
        if bad or not self.resolutions:
            raise ValueError(
                f"resolutions {bad or '[]'} are not OFA resolutions (128..224 in steps of 4)"
            )
        object.__setattr__(self, "resolutions", tuple(sorted(set(self.resolutions))))
        fixed_row = None
        if self.fixed_kernels is not None:
            fixed_row = np.repeat(np.asarray(self.fixed_kernels, GENE_DTYPES["ks"]), MAX_DEPTH)
        object.__setattr__(self, "_fixed_ks_row", fixed_row)

    # -- membership --------------------------------------------------------------------------
    def validate(self, arch: ArchLike) -> Arch:
        """Return the parsed arch, or raise `ArchError` naming the field outside this space."""
        arch = Arch.parse(arch, width_mult=self.width_mult)
        if arch.r not in self.resolutions:
            raise ArchError(
                f"field 'r' has value {arch.r}; space '{self.name}' allows resolutions "
                f"{', '.join(map(str, self.resolutions))}",
                field="r",
                value=arch.r,
            )
        for i in arch.active_block_indices:
            stage = i // MAX_DEPTH
            if self.fixed_kernels is not None and arch.ks[i] != self.fixed_kernels[stage]:
                raise ArchError(
                    f"field 'ks[{i}]' has value {arch.ks[i]}; space '{self.name}' fixes the "
                    f"kernel of stage {stage + 1} to {self.fixed_kernels[stage]}",
                    field=f"ks[{i}]",
                    value=arch.ks[i],
                )
            expected = COMPOFA_EXPAND_FOR_DEPTH[arch.d[stage]]
            if self.coupled_expand and arch.e[i] != expected:
                raise ArchError(
                    f"field 'e[{i}]' has value {arch.e[i]}; space '{self.name}' couples the "
                    f"expand ratio to the depth: stage {stage + 1} has depth {arch.d[stage]}, "
                    f"so its expand ratio is {expected}",
                    field=f"e[{i}]",
                    value=arch.e[i],
                )
        return arch

    def contains(self, arch: ArchLike) -> bool:
        try:
            self.validate(arch)
        except ArchError:
            return False
        return True

    def contains_batch(self, batch: ArchBatch) -> np.ndarray:
        """(n,) bool: which rows of a batch belong to this space (vectorised `contains`)."""
        mask = batch.active_mask
        ok = np.isin(batch.r, self.resolutions) & np.isclose(batch.width_mult, self.width_mult)
        if self._fixed_ks_row is not None:
            ok &= ~np.any(mask & (batch.ks != self._fixed_ks_row[None, :]), axis=1)
        if self.coupled_expand:
            expected = np.repeat(_EXPAND_FOR_DEPTH[batch.d], MAX_DEPTH, axis=1)
            ok &= ~np.any(mask & (batch.e != expected), axis=1)
        return ok

    # -- counting ----------------------------------------------------------------------------
    def count(self) -> int:
        """The number of distinct subnets (inactive blocks do not count)."""
        per_block = (1 if self.fixed_kernels is not None else len(KERNEL_CHOICES)) * (
            1 if self.coupled_expand else len(EXPAND_CHOICES)
        )
        per_stage = sum(per_block**depth for depth in DEPTH_CHOICES)
        return per_stage**NUM_STAGES * len(self.resolutions)

    def enumerate(self) -> ArchBatch:
        """Every distinct subnet, for spaces small enough to list (fixed-kernel CompOFA)."""
        total = self.count()
        if total > MAX_ENUMERATION:
            raise ValueError(
                f"space '{self.name}' has {total:,} distinct subnets; enumeration is limited "
                f"to {MAX_ENUMERATION:,}"
            )
        per_stage = []
        for stage in range(NUM_STAGES):
            kernels = KERNEL_CHOICES if self.fixed_kernels is None else (self.fixed_kernels[stage],)
            options = []
            for depth in DEPTH_CHOICES:
                expands = (
                    (COMPOFA_EXPAND_FOR_DEPTH[depth],) if self.coupled_expand else EXPAND_CHOICES
                )
                filler = ((kernels[0], expands[0]),) * (MAX_DEPTH - depth)
                for blocks in itertools.product(itertools.product(kernels, expands), repeat=depth):
                    options.append((depth, blocks + filler))
            per_stage.append(options)
        rows = [(r, stages) for r in self.resolutions for stages in itertools.product(*per_stage)]
        blocks = np.array(
            [[block for _, stage_blocks in stages for block in stage_blocks] for _, stages in rows],
            dtype=GENE_DTYPES["ks"],
        ).reshape(len(rows), NUM_BLOCKS, 2)
        return ArchBatch(
            ks=blocks[:, :, 0].copy(),
            e=blocks[:, :, 1].copy(),
            d=np.array([[depth for depth, _ in stages] for _, stages in rows], GENE_DTYPES["d"]),
            r=np.array([r for r, _ in rows], dtype=GENE_DTYPES["r"]),
            width_mult=np.full(len(rows), self.width_mult),
        )

    # -- sampling ----------------------------------------------------------------------------
    def sample_batch(self, n: int, seed: SeedLike = None) -> ArchBatch:
        """``n`` subnets drawn uniformly per choice, as OFA's ``ArchManager`` draws them."""
        if n < 0:
            raise ValueError(f"cannot sample {n} subnets")
        rng = as_generator(seed)
        ks = _choice(rng, KERNEL_CHOICES, (n, NUM_BLOCKS), "ks")
        e = _choice(rng, EXPAND_CHOICES, (n, NUM_BLOCKS), "e")
        d = _choice(rng, DEPTH_CHOICES, (n, NUM_STAGES), "d")
        r = _choice(rng, self.resolutions, (n,), "r")
        return self._canonicalise(
            ArchBatch(ks=ks, e=e, d=d, r=r, width_mult=np.full(n, self.width_mult))
        )

    def sample(self, n: int, seed: SeedLike = None) -> list[Arch]:
        """``n`` subnets (repeats possible), reproducible for a given seed."""
        return self.sample_batch(n, seed).to_archs()

    def sample_distinct_batch(self, n: int, seed: SeedLike = None) -> ArchBatch:
        """``n`` different subnets (by canonical key), reproducible for a given seed.

        For one seed, the subnets drawn for ``n`` are the first ``n`` of those drawn for any
        larger ``n``, so asking for more extends a dataset instead of replacing it. Small
        spaces (fixed-kernel CompOFA) are a seeded permutation of `enumerate`.
        """
        total = self.count()
        if n > total:
            raise ValueError(
                f"cannot draw {n} distinct subnets: space '{self.name}' has only {total}"
            )
        rng = as_generator(seed)
        if total <= MAX_ENUMERATION:
            return self.enumerate()[rng.permutation(total)[:n]]
        chosen = self.sample_batch(0, rng)
        while len(chosen) < n:
            merged = ArchBatch.concatenate([chosen, self.sample_batch(_DRAW_BLOCK, rng)])
            chosen = merged[merged.unique_index()]
        return chosen[:n]

    def sample_distinct(self, n: int, seed: SeedLike = None) -> list[Arch]:
        return self.sample_distinct_batch(n, seed).to_archs()

    # -- evolution ---------------------------------------------------------------------------
    def mutate_batch(self, batch: ArchBatch, prob: float, seed: SeedLike = None) -> ArchBatch:
        """OFA's mutation: each of resolution, every block's (kernel, expand) and every stage's
        depth is redrawn with probability ``prob``; coupled and fixed choices stay coupled."""
        rng = as_generator(seed)
        n = len(batch)
        fresh = self.sample_batch(n, rng)
        redraw_r = rng.random(n) < prob
        redraw_block = rng.random((n, NUM_BLOCKS)) < prob
        redraw_depth = rng.random((n, NUM_STAGES)) < prob
        return self._canonicalise(
            ArchBatch(
                ks=np.where(redraw_block, fresh.ks, batch.ks),
                e=np.where(redraw_block, fresh.e, batch.e),
                d=np.where(redraw_depth, fresh.d, batch.d),
                r=np.where(redraw_r, fresh.r, batch.r),
                width_mult=batch.width_mult.copy(),
            )
        )

    def mutate(self, arch: ArchLike, prob: float, seed: SeedLike = None) -> Arch:
        return self.mutate_batch(
            ArchBatch.from_archs([self.validate(arch)]), prob, seed
        ).to_archs()[0]

    def crossover_batch(
        self, first: ArchBatch, second: ArchBatch, seed: SeedLike = None
    ) -> ArchBatch:
        """OFA's crossover: every gene (block kernel and expand, stage depth, resolution) taken
        from either parent with equal chance; CompOFA's expand ratios follow the chosen depth."""
        if len(first) != len(second):
            raise ValueError(f"crossover of {len(first)} and {len(second)} parents")
        rng = as_generator(seed)
        n = len(first)
        pick_ks = rng.random((n, NUM_BLOCKS)) < 0.5
        pick_e = rng.random((n, NUM_BLOCKS)) < 0.5
        pick_d = rng.random((n, NUM_STAGES)) < 0.5
        pick_r = rng.random(n) < 0.5
        return self._canonicalise(
            ArchBatch(
                ks=np.where(pick_ks, second.ks, first.ks),
                e=np.where(pick_e, second.e, first.e),
                d=np.where(pick_d, second.d, first.d),
                r=np.where(pick_r, second.r, first.r),
                width_mult=first.width_mult.copy(),
            )
        )

    def crossover(self, first: ArchLike, second: ArchLike, seed: SeedLike = None) -> Arch:
        return self.crossover_batch(
            ArchBatch.from_archs([self.validate(first)]),
            ArchBatch.from_archs([self.validate(second)]),
            seed,
        ).to_archs()[0]

    def _canonicalise(self, batch: ArchBatch) -> ArchBatch:
        """Impose the space's fixed kernels and coupled expand ratios on every block."""
        ks, e = batch.ks, batch.e
        if self._fixed_ks_row is not None:
            ks = np.broadcast_to(self._fixed_ks_row, ks.shape).copy()
        if self.coupled_expand:
            e = np.repeat(_EXPAND_FOR_DEPTH[batch.d], MAX_DEPTH, axis=1)
        return ArchBatch(ks=ks, e=e, d=batch.d, r=batch.r, width_mult=batch.width_mult)


def get_space(
    name: str,
    *,
    resolutions: str | Sequence[int] = "seed",
    width_mult: float = 1.0,
) -> SearchSpace:
    """A search space by name: ``ofa``, ``compofa`` (fixed kernels [3,5,3,3,5]) or
    ``compofa-elastic``; ``resolutions`` is ``"seed"`` (160..224 step 16), ``"ofa"``
    (128..224 step 4) or an explicit list."""
    if not isinstance(name, str):
        raise ValueError(f"space name must be a string, got {name!r}")
    canonical = SPACE_ALIASES.get(name.lower(), name.lower())
    if canonical not in SPACE_NAMES:
        raise ValueError(f"unknown search space {name!r}; known spaces: {', '.join(SPACE_NAMES)}")
    if isinstance(resolutions, str):
        if resolutions not in RESOLUTION_SETS:
            raise ValueError(
                f"unknown resolution set {resolutions!r}; use one of "
                f"{', '.join(RESOLUTION_SETS)} or a list of resolutions"
            )
        resolution_values = RESOLUTION_SETS[resolutions]
    else:
        resolution_values = tuple(int(r) for r in resolutions)
    return SearchSpace(
        name=canonical,
        resolutions=resolution_values,
        width_mult=width_mult,
        fixed_kernels=COMPOFA_FIXED_KERNELS if canonical == "compofa" else None,
        coupled_expand=canonical != "ofa",
    )


#: Every space and the spaces inside it (fixed-kernel CompOFA subnets are CompOFA-elastic
#: subnets, which are OFA subnets).
_SUBSPACES = {
    "ofa": ("ofa", "compofa-elastic", "compofa"),
    "compofa-elastic": ("compofa-elastic", "compofa"),
    "compofa": ("compofa",),
}


def subspaces(name: str) -> tuple[str, ...]:
    """The space ``name`` and the spaces whose every subnet is one of its subnets."""
    return _SUBSPACES[get_space(name).name]


def spaces_holding(batch: ArchBatch) -> tuple[str, ...]:
    """The names of the spaces that hold every subnet of ``batch`` by its kernels, expand
    ratios and depths (any OFA resolution, the batch's own widths)."""
    widths = np.unique(batch.width_mult)
    return tuple(
        name
        for name in SPACE_NAMES
        if all(
            get_space(name, resolutions="ofa", width_mult=float(width))
            .contains_batch(batch[batch.width_mult == width])
            .all()
            for width in widths
        )
    )


def infer_space(batch: ArchBatch) -> str | None:
    """The one space that holds these subnets, or None when several do (a fixed-kernel
    CompOFA subnet is also an OFA one) or none."""
    holding = spaces_holding(batch)
    return holding[0] if len(holding) == 1 else None
