"""`Arch`: one OFA-MobileNetV3 subnet, parsed safely, validated, and keyed canonically.

The seed's files spell a subnet as a Python dict literal
``{'wid': None, 'ks': [20 ints], 'e': [20 ints], 'd': [5 ints], 'r': [int]}``. Values of the
blocks a stage's depth leaves out are meaningless, so two spellings that differ only there are
the same subnet: `Arch.canonical_key` masks them.
"""

from __future__ import annotations

import ast
import json
import numbers
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ofa_latency_kedro.errors import OfaLatencyError
from ofa_latency_kedro.search_space.constants import (
    DEPTH_CHOICES,
    EXPAND_CHOICES,
    KERNEL_CHOICES,
    MAX_DEPTH,
    NUM_BLOCKS,
    NUM_STAGES,
    OFA_RESOLUTIONS,
    WIDTH_CHOICES,
)

if TYPE_CHECKING:
    from ofa_latency_kedro.search_space.spaces import SearchSpace

#: An arch spelled as text is ~200 characters; anything far longer is refused before parsing.
MAX_ARCH_TEXT_LENGTH = 4096
_SEED_KEYS = ("wid", "ks", "e", "d", "r")
#: The fields an arch dict may have: the seed's, and the width multiplier.
KNOWN_FIELDS = frozenset((*_SEED_KEYS, "width_mult"))
_LOOKS_LIKE_JSON = re.compile(r'^\{\s*"')
#: The seed's exact spelling (only known keys, integers, lists and None): read as JSON, which
#: is ~10x faster than ``ast.literal_eval`` and gives the same dict for text of this shape.
_SEED_LITERAL = re.compile(
    r"^\{'wid': None, 'ks': \[[0-9, ]*\], 'e': \[[0-9, ]*\], 'd': \[[0-9, ]*\], "
    r"'r': \[[0-9]+\]\}$"
)


class ArchError(OfaLatencyError, ValueError):
    """A subnet description that is malformed or outside a search space.

    ``field`` names the offending field (``"ks[3]"``, ``"r"``, ...) and ``value`` its value, so
    callers that read files can add the file and line. ``item`` is the position of the subnet
    in a list read at once (`ArchBatch.from_archs`), None for a single one.
    """

    def __init__(self, message: str, *, field: str | None = None, value: Any = None) -> None:
        super().__init__(message)
        self.field = field
        self.value = value
        self.item: int | None = None


def _snippet(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _as_int(field: str, value: Any) -> int:
    if type(value) is int:  # the common case, without the slower abstract-class checks
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArchError(
            f"field '{field}' must be an integer, got {_snippet(value)}",
            field=field,
            value=value,
        )
    return int(value)


def _int_tuple(field: str, values: Any, length: int, allowed: Sequence[int]) -> tuple[int, ...]:
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise ArchError(
            f"field '{field}' must be a list of {length} integers, got {_snippet(values)}",
            field=field,
            value=values,
        )
    items = list(values)
    if len(items) != length:
        raise ArchError(
            f"field '{field}' must have {length} values, got {len(items)}: {_snippet(items)}",
            field=field,
            value=items,
        )
    result = []
    for i, item in enumerate(items):
        number = _as_int(f"{field}[{i}]", item)
        if number not in allowed:
            raise ArchError(
                f"field '{field}[{i}]' has value {number}; allowed values are "
                f"{', '.join(map(str, allowed))}",
                field=f"{field}[{i}]",
                value=number,
            )
        result.append(number)
    return tuple(result)


def _resolution(value: Any) -> int:
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise ArchError(
                f"field 'r' must hold exactly one resolution, got {_snippet(value)}",
                field="r",
                value=value,
            )
        value = value[0]
    r = _as_int("r", value)
    if r not in OFA_RESOLUTIONS:
        raise ArchError(
            f"field 'r' has value {r}; OFA resolutions are 128..224 in steps of 4",
            field="r",
            value=r,
        )
    return r


def width_choice(value: Any) -> float:
    """The width multiplier ``value`` stands for (1.0 or 1.2), or `ArchError`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArchError(
            f"field 'width_mult' must be a number, got {_snippet(value)}",
            field="width_mult",
            value=value,
        )
    for choice in WIDTH_CHOICES:
        if abs(float(value) - choice) < 1e-9:
            return choice
    raise ArchError(
        f"field 'width_mult' has value {value}; allowed values are "
        f"{', '.join(map(str, WIDTH_CHOICES))}",
        field="width_mult",
        value=value,
    )


def parse_arch_text(text: str | bytes) -> dict[str, Any]:
    """Read a dict from the seed's Python literal or from JSON, never executing anything."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ArchError(f"arch text is not valid UTF-8: {exc}", field="arch") from None
    if len(text) > MAX_ARCH_TEXT_LENGTH:
        raise ArchError(
            f"arch text is {len(text)} characters long; a subnet description is at most "
            f"{MAX_ARCH_TEXT_LENGTH}",
            field="arch",
            value=text[:80],
        )
    stripped = text.strip()
    if _SEED_LITERAL.match(stripped):
        try:
            return json.loads(stripped.replace("'", '"').replace("None", "null"))
        except ValueError:
            pass  # e.g. a leading zero: not JSON, nor Python; the readers below say so
    readers = (
        (json.loads, ast.literal_eval) if _LOOKS_LIKE_JSON.match(stripped) else (ast.literal_eval,)
    )
    for reader in readers:
        try:
            value = reader(stripped)
            break
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
    else:
        raise ArchError(
            f"arch is neither a Python dict literal nor a JSON object: {_snippet(stripped)}",
            field="arch",
            value=stripped[:80],
        )
    if not isinstance(value, dict):
        raise ArchError(
            f"arch must be a dict with keys ks, e, d, r; got {type(value).__name__}: "
            f"{_snippet(value)}",
            field="arch",
            value=value,
        )
    return value


@dataclass(frozen=True, slots=True)
class Arch:
    """An immutable, validated OFA-MobileNetV3 subnet: kernels, expand ratios, depths,
    resolution and width multiplier."""

    ks: tuple[int, ...]
    e: tuple[int, ...]
    d: tuple[int, ...]
    r: int
    width_mult: float = 1.0
    #: ks + e + d + (r,) in one tuple, for stacking many archs into arrays quickly.
    genes: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ks", _int_tuple("ks", self.ks, NUM_BLOCKS, KERNEL_CHOICES))
        object.__setattr__(self, "e", _int_tuple("e", self.e, NUM_BLOCKS, EXPAND_CHOICES))
        object.__setattr__(self, "d", _int_tuple("d", self.d, NUM_STAGES, DEPTH_CHOICES))
        object.__setattr__(self, "r", _resolution(self.r))
        object.__setattr__(self, "width_mult", width_choice(self.width_mult))
        object.__setattr__(self, "genes", (*self.ks, *self.e, *self.d, self.r))

    @classmethod
    def parse(
        cls,
        source: Arch | Mapping[str, Any] | str | bytes,
        *,
        width_mult: float | None = None,
        space: str | SearchSpace | None = None,
    ) -> Arch:
        """Build an Arch from an Arch, the seed's dict, its string form or JSON.

        ``width_mult`` applies to dicts and text that do not carry one (the seed's files never
        do); ``space`` additionally checks membership of that search space.
        """
        if isinstance(source, Arch):
            arch = source
            if width_mult is not None and width_choice(width_mult) != arch.width_mult:
                raise ArchError(
                    f"field 'width_mult': arch has width {arch.width_mult}, "
                    f"but width {width_mult} was requested",
                    field="width_mult",
                    value=width_mult,
                )
        elif isinstance(source, Mapping):
            arch = cls.from_dict(source, width_mult=width_mult)
        elif isinstance(source, (str, bytes)):
            arch = cls.from_dict(parse_arch_text(source), width_mult=width_mult)
        else:
            raise ArchError(
                f"cannot read an arch from {type(source).__name__}: {_snippet(source)}",
                field="arch",
                value=source,
            )
        if space is not None:
            # spaces.py builds on this module, so it is imported here, not at the top.
            from ofa_latency_kedro.search_space.spaces import get_space  # noqa: PLC0415

            resolved = get_space(space) if isinstance(space, str) else space
            resolved.validate(arch)
        return arch

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, width_mult: float | None = None) -> Arch:
        unknown = sorted(str(key) for key in data if key not in KNOWN_FIELDS)
        if unknown:
            raise ArchError(
                f"unknown arch field(s) {', '.join(map(repr, unknown))}; expected "
                f"{', '.join(map(repr, _SEED_KEYS))} and optionally 'width_mult'",
                field=unknown[0],
            )
        missing = [key for key in ("ks", "e", "d", "r") if key not in data]
        if missing:
            raise ArchError(
                f"arch is missing field(s) {', '.join(map(repr, missing))}", field=missing[0]
            )
        if data.get("wid") is not None:
            raise ArchError(
                f"field 'wid' has value {_snippet(data['wid'])}; OFA-MobileNetV3 has no elastic "
                "width index, give the width multiplier as 'width_mult'",
                field="wid",
                value=data["wid"],
            )
        own_width = data.get("width_mult")
        if (
            own_width is not None
            and width_mult is not None
            and width_choice(own_width) != width_choice(width_mult)
        ):
            raise ArchError(
                f"field 'width_mult': arch has width {own_width}, but width {width_mult} was "
                "requested",
                field="width_mult",
                value=own_width,
            )
        chosen = own_width if own_width is not None else width_mult
        return cls(
            ks=data["ks"],
            e=data["e"],
            d=data["d"],
            r=data["r"],
            width_mult=1.0 if chosen is None else chosen,
        )

    @classmethod
    def from_json(cls, text: str, *, width_mult: float | None = None) -> Arch:
        return cls.parse(text, width_mult=width_mult)

    # -- structure ---------------------------------------------------------------------------
    @property
    def active_blocks(self) -> tuple[bool, ...]:
        """Whether each of the 20 elastic blocks runs (block j of a stage runs when j < d)."""
        return tuple(i % MAX_DEPTH < self.d[i // MAX_DEPTH] for i in range(NUM_BLOCKS))

    @property
    def active_block_indices(self) -> tuple[int, ...]:
        return tuple(i for i, active in enumerate(self.active_blocks) if active)

    @property
    def num_active_blocks(self) -> int:
        return sum(self.d)

    @property
    def canonical_key(self) -> str:
        """A key equal for two spellings of the same subnet and different otherwise.

        Inactive blocks are left out; resolution and width are included, e.g.
        ``w1.0/r224/k3e4.k5e6/k7e3.k3e3/...`` (one ``/``-group per stage).
        """
        stages = []
        for s in range(NUM_STAGES):
            blocks = range(s * MAX_DEPTH, s * MAX_DEPTH + self.d[s])
            stages.append(".".join(f"k{self.ks[i]}e{self.e[i]}" for i in blocks))
        return f"w{self.width_mult:.1f}/r{self.r}/" + "/".join(stages)

    def same_subnet(self, other: Arch) -> bool:
        return self.canonical_key == other.canonical_key

    # -- conversions -------------------------------------------------------------------------
    def to_seed_dict(self) -> dict[str, Any]:
        """The seed's dict (``wid`` is always None; the seed keeps the width out of band)."""
        return {
            "wid": None,
            "ks": list(self.ks),
            "e": list(self.e),
            "d": list(self.d),
            "r": [self.r],
        }

    def to_seed_string(self) -> str:
        """The seed's ``child_arch`` text, character for character."""
        return str(self.to_seed_dict())

    def to_dict(self) -> dict[str, Any]:
        """The seed's dict plus ``width_mult``: the form that round-trips losslessly."""
        return {**self.to_seed_dict(), "width_mult": self.width_mult}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def replace(self, **changes: Any) -> Arch:
        fields = {
            "ks": self.ks,
            "e": self.e,
            "d": self.d,
            "r": self.r,
            "width_mult": self.width_mult,
        }
        fields.update(changes)
        return Arch(**fields)

    def __str__(self) -> str:
        return self.to_seed_string()


#: Everything the public API accepts as a subnet.
ArchLike = Arch | Mapping[str, Any] | str | bytes
