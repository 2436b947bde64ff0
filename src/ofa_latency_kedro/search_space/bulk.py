"""Many subnets read at once, each with exactly the outcome `Arch.parse` gives it.

`read_genes` turns a list of subnets in any form `Arch.parse` accepts into rows of genes
(`Arch.genes`: 20 kernels, 20 expand ratios, 5 depths, the resolution) and widths, without an
`Arch` per item:

- `Arch` objects give their ``genes``;
- text in the seed's exact ``child_arch`` spelling has every digit at a fixed column (kernels,
  expand ratios and depths are one digit, resolutions three), so a whole list is compared with
  that template and read in a few numpy operations on its joined bytes;
- dicts are gathered field by field into arrays, with their keys, widths, container and
  element types checked on whole lists.

Every row is then checked against the choices with numpy on the whole array. Whatever a
reader cannot vouch for (another spelling, an unusual type, a value outside the choices, a
conflicting width) is left to `Arch.parse`, one item at a time and in list order, so a list
with bad items raises exactly the `ArchError` `Arch.parse` raises for the first of them, with
``item`` set to its position.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from itertools import chain, compress, repeat
from typing import Any

import numpy as np

from ofa_latency_kedro.search_space.arch import KNOWN_FIELDS, Arch, ArchError, width_choice
from ofa_latency_kedro.search_space.constants import (
    DEPTH_CHOICES,
    EXPAND_CHOICES,
    KERNEL_CHOICES,
    NUM_BLOCKS,
    NUM_STAGES,
    OFA_RESOLUTIONS,
)

#: Genes per subnet, in `Arch.genes` order: ks, e, d, r.
GENE_COUNT = 2 * NUM_BLOCKS + NUM_STAGES + 1
_GENE_CHOICES = (
    (KERNEL_CHOICES,) * NUM_BLOCKS
    + (EXPAND_CHOICES,) * NUM_BLOCKS
    + (DEPTH_CHOICES,) * NUM_STAGES
    + (OFA_RESOLUTIONS,)
)
_LARGEST_GENE = max(OFA_RESOLUTIONS)
#: ``_ALLOWED[j, v]``: value v is a choice of gene j.
_ALLOWED = np.zeros((GENE_COUNT, _LARGEST_GENE + 1), dtype=bool)
for _gene, _choices in enumerate(_GENE_CHOICES):
    _ALLOWED[_gene, list(_choices)] = True
_GENE_OFFSET = np.arange(GENE_COUNT) * _ALLOWED.shape[1]

#: The seed's spelling as bytes; its digits are exactly the genes' digits (its keys and
#: ``None`` have none), one per kernel, expand ratio and depth, then three for the resolution.
_TEMPLATE = np.frombuffer(
    Arch(ks=(3,) * NUM_BLOCKS, e=(3,) * NUM_BLOCKS, d=(2,) * NUM_STAGES, r=128)
    .to_seed_string()
    .encode("ascii"),
    dtype=np.uint8,
)
_IS_DIGIT = (_TEMPLATE >= ord("0")) & (_TEMPLATE <= ord("9"))
_DIGIT_COLUMNS = np.flatnonzero(_IS_DIGIT)
_FIXED_COLUMNS = np.flatnonzero(~_IS_DIGIT)
_FIXED_BYTES = _TEMPLATE[_FIXED_COLUMNS]
_RESOLUTION_DIGITS = len(_DIGIT_COLUMNS) - (GENE_COUNT - 1)

_LIST_FIELDS = operator.itemgetter("ks", "e", "d")
_LIST_LENGTHS = (NUM_BLOCKS, NUM_BLOCKS, NUM_STAGES)
_RESOLUTION_FIELD = operator.itemgetter("r")
_CONTAINERS = frozenset((list, tuple))

#: What a reader returns: genes in a type that holds every value read (rows it did not read
#: are zeros), widths, and the rows it read.
Read = tuple[np.ndarray, np.ndarray, np.ndarray]


def read_genes(
    items: Sequence[Any], width_mult: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(n, `GENE_COUNT`) int16 genes and (n,) float64 widths of ``items``: what
    ``Arch.parse(item, width_mult=width_mult)`` gives for each, or its error for the first
    item it refuses."""
    n = len(items)
    genes = np.zeros((n, GENE_COUNT), dtype=np.int16)
    widths = np.zeros(n, dtype=np.float64)
    done = np.zeros(n, dtype=bool)
    requested = _requested_width(width_mult)
    if n and requested is not False:
        for reader, rows in _groups(items):
            subset = items if len(rows) == n else [items[i] for i in rows.tolist()]
            values, row_widths, ok = reader(subset, requested)
            if reader is not _read_archs:
                ok &= _valid_rows(values)
            if len(rows) == n and ok.all():  # the common case: nothing left to sort out
                return values.astype(np.int16), row_widths
            read = rows[ok]
            genes[read] = values[ok]
            widths[read] = row_widths[ok]
            done[read] = True
    for i in np.flatnonzero(~done).tolist():
        try:
            arch = Arch.parse(items[i], width_mult=width_mult)
        except ArchError as error:
            error.item = i
            raise
        genes[i] = arch.genes
        widths[i] = arch.width_mult
    return genes, widths


def _requested_width(width_mult: Any) -> float | None | bool:
    """The requested width as `Arch` holds it, None when none is, False when it is invalid
    (then every item goes to `Arch.parse`, which says so in its own words)."""
    if width_mult is None:
        return None
    try:
        return width_choice(width_mult)
    except ArchError:
        return False


def _groups(items: Sequence[Any]) -> list[tuple[Callable[..., Read], np.ndarray]]:
    """(reader, rows) for every kind of item a fast reader takes (exact types only: a
    subclass may behave differently, e.g. a defaultdict invents missing fields)."""
    types = list(map(type, items))
    kinds = set(types)
    if len(kinds) == 1:
        reader = _READERS.get(types[0])
        return [] if reader is None else [(reader, np.arange(len(items)))]
    codes = np.fromiter(map(_READER_CODE.get, types, repeat(-1)), dtype=np.int8, count=len(types))
    return [
        (_READERS[kind], np.flatnonzero(codes == _READER_CODE[kind]))
        for kind in kinds
        if kind in _READERS
    ]


def _valid_rows(genes: np.ndarray) -> np.ndarray:
    """(n,) bool: every gene of the row is one of its choices (genes of any integer type)."""
    inside = (genes >= 0) & (genes <= _LARGEST_GENE)
    index = _GENE_OFFSET + np.where(inside, genes, 0)
    return (inside & _ALLOWED.take(index)).all(axis=1)


def _read_archs(archs: Sequence[Arch], requested: float | None) -> Read:
    n = len(archs)
    flat = list(chain.from_iterable(map(operator.attrgetter("genes"), archs)))
    genes = np.frombuffer(bytes(flat), dtype=np.uint8).reshape(n, GENE_COUNT)  # genes < 256
    widths = np.fromiter(map(operator.attrgetter("width_mult"), archs), np.float64, count=n)
    ok = np.ones(n, dtype=bool) if requested is None else widths == requested
    return genes, widths, ok


def _read_texts(texts: Sequence[str] | Sequence[bytes], requested: float | None) -> Read:
    """Text in the seed's exact spelling; any other text is left to `Arch.parse`."""
    n = len(texts)
    genes = np.zeros((n, GENE_COUNT), dtype=np.int16)
    ok = np.zeros(n, dtype=bool)
    widths = np.full(n, 1.0 if requested is None else requested)
    fits = np.fromiter(map(len, texts), dtype=np.int64, count=n) == len(_TEMPLATE)
    chosen = texts if fits.all() else list(compress(texts, fits))
    if not chosen:
        return genes, widths, ok
    # "replace" keeps one byte per character, so rows stay aligned; "?" matches no template.
    joined = (
        "".join(chosen).encode("ascii", "replace")
        if isinstance(chosen[0], str)
        else b"".join(chosen)
    )
    rows = np.frombuffer(joined, dtype=np.uint8).reshape(len(chosen), len(_TEMPLATE))
    # Bytes below "0" wrap around to large values, so one comparison finds every non-digit.
    digits = (rows[:, _DIGIT_COLUMNS] - np.uint8(ord("0"))).astype(np.int16)
    matches = (rows[:, _FIXED_COLUMNS] == _FIXED_BYTES).all(axis=1) & (digits <= 9).all(axis=1)
    resolution = digits[:, -_RESOLUTION_DIGITS:] @ np.array([100, 10, 1], dtype=np.int16)
    genes[fits] = np.concatenate(
        [digits[:, : GENE_COUNT - 1], resolution[:, None]], axis=1, dtype=np.int16
    )
    ok[fits] = matches
    return genes, widths, ok


def _read_dicts(dicts: Sequence[dict[str, Any]], requested: float | None) -> Read:
    """Dicts with the seed's fields (and optionally ``width_mult``) holding lists of plain
    integers; a list with anything else is left to `Arch.parse` whole."""
    n = len(dicts)
    nothing = (np.zeros((n, GENE_COUNT), dtype=np.int16), np.zeros(n), np.zeros(n, dtype=bool))
    if not set().union(*dicts) <= KNOWN_FIELDS:
        return nothing
    try:
        lists = list(chain.from_iterable(map(_LIST_FIELDS, dicts)))  # ks, e, d, dict by dict
        resolutions = list(map(_RESOLUTION_FIELD, dicts))
    except KeyError:
        return nothing
    ok = np.fromiter(map(operator.is_, map(dict.get, dicts, repeat("wid")), repeat(None)), bool, n)
    widths, width_ok = _dict_widths(dicts, requested)
    ok &= width_ok
    blocks, fits = _int_rows(lists, _LIST_LENGTHS)
    ok &= fits
    if set(map(type, resolutions)) <= _CONTAINERS:
        resolution, fits = _int_rows(resolutions, (1,))
        ok &= fits
    else:
        resolution = _integers(resolutions)
    if blocks is None or resolution is None:
        return nothing
    # In whatever type holds the values read (uint8, or int64 for values past a byte):
    # narrowing happens only after `_valid_rows`, so no value can wrap into a valid one.
    return np.concatenate([blocks, resolution.reshape(n, 1)], axis=1), widths, ok


def _dict_widths(
    dicts: Sequence[dict[str, Any]], requested: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """Every dict's width (its own ``width_mult``, else the requested one, else 1.0) and
    whether it is valid and agrees with the requested one."""
    n = len(dicts)
    own = list(map(dict.get, dicts, repeat("width_mult")))
    widths = np.full(n, 1.0 if requested is None else requested)
    ok = np.ones(n, dtype=bool)
    absent = np.fromiter(map(operator.is_, own, repeat(None)), dtype=bool, count=n)
    if absent.all():
        return widths, ok
    choices: dict[tuple[type, Any], float | None] = {}
    for i in np.flatnonzero(~absent).tolist():
        value = own[i]
        key = (type(value), value)
        try:
            choice = choices[key] if key in choices else choices.setdefault(key, _width(value))
        except TypeError:  # unhashable
            choice = None
        if choice is None or (requested is not None and choice != requested):
            ok[i] = False
        else:
            widths[i] = choice
    return widths, ok


def _width(value: Any) -> float | None:
    try:
        return width_choice(value)
    except ArchError:
        return None


def _int_rows(lists: Sequence[Any], lengths: Sequence[int]) -> tuple[np.ndarray | None, np.ndarray]:
    """Rows of integers from lists (or tuples) of integers, ``len(lengths)`` lists per row,
    and which rows had lists of those ``lengths`` (the others are zeros); None when an
    element is not an integer `Arch.parse` takes as is."""
    per_row = len(lengths)
    rows = len(lists) // per_row
    if not set(map(type, lists)) <= _CONTAINERS:
        return None, np.zeros(rows, dtype=bool)
    sizes = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
    fits = (sizes.reshape(rows, per_row) == np.asarray(lengths)).all(axis=1)
    if not fits.all():
        fillers = [(0,) * length for length in lengths] * rows
        keep = np.repeat(fits, per_row).tolist()
        lists = [
            values if kept else filler
            for values, filler, kept in zip(lists, fillers, keep, strict=True)
        ]
    values = _integers(list(chain.from_iterable(lists)))
    return (None if values is None else values.reshape(rows, sum(lengths))), fits


def _integers(values: list[Any]) -> np.ndarray | None:
    """A list of integers as an array, or None when one is not an integer `Arch.parse`
    takes as is (plain ints and NumPy integers are; bools, floats and the rest are not)."""
    # The sum of plain ints (bools included: their 0 and 1 are no choice, so `_valid_rows`
    # leaves them to `Arch.parse`) stays a plain int, in C at a nanosecond an item; anything
    # else (a NumPy integer, a 0-d array, a float) turns it into something else, and only
    # then are the types looked at one by one.
    try:
        with np.errstate(all="ignore"):  # NumPy integers may overflow: only the type counts
            plain = type(sum(values)) is int
    except (TypeError, ValueError, OverflowError):
        return None
    if not plain and not all(t is int or issubclass(t, np.integer) for t in set(map(type, values))):
        return None
    try:  # every valid gene is below 256: one byte each, read by the bytes constructor
        return np.frombuffer(bytes(values), dtype=np.uint8)
    except (ValueError, OverflowError):
        pass
    try:
        array = np.array(values)
    except (ValueError, OverflowError):
        return None
    return array if array.dtype.kind in "iu" else None


_READERS: dict[type, Callable[..., Read]] = {
    Arch: _read_archs,
    str: _read_texts,
    bytes: _read_texts,
    dict: _read_dicts,
}
_READER_CODE = {kind: code for code, kind in enumerate(_READERS)}
