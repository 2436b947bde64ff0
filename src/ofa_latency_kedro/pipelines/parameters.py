"""Every ``params:`` section of the project and its settings class: the reference of the
parameters (each class's docstring says what its fields mean, its field defaults are the
only defaults) and what a table of them, or a check of them, is built from.

``python -m ofa_latency_kedro.pipelines.parameters [section ...]`` prints the table;
``... --markdown`` writes the docs' parameter reference (``docs/parameters.md``, which a test
keeps equal to it)."""

from __future__ import annotations

import dataclasses
import inspect
import json
import sys
import typing
from collections.abc import Mapping
from typing import Any

from ofa_latency_kedro.pipelines.common import RaySettings
from ofa_latency_kedro.pipelines.encoding.settings import EncodingSettings
from ofa_latency_kedro.pipelines.finetuning.settings import FinetuningSettings
from ofa_latency_kedro.pipelines.generalization.settings import GeneralizationSettings
from ofa_latency_kedro.pipelines.nas.settings import NasSettings
from ofa_latency_kedro.pipelines.sampling.settings import SamplingSettings
from ofa_latency_kedro.pipelines.training.settings import TrainingSettings
from ofa_latency_kedro.settings_dict import describe, from_settings, settings_fields

#: The settings class of each section of the parameters (``params:<section>``).
PARAMETER_SECTIONS: dict[str, type] = {
    "sampling": SamplingSettings,
    "encoding": EncodingSettings,
    "training": TrainingSettings,
    "generalization": GeneralizationSettings,
    "finetuning": FinetuningSettings,
    "nas": NasSettings,
    "ray": RaySettings,
}


class Required:
    """The default of a parameter that has none: it must be given."""

    def __repr__(self) -> str:
        return "required"


REQUIRED = Required()


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return REQUIRED


def _rows(cls: type, prefix: str) -> list[tuple[str, str, Any]]:
    hints = typing.get_type_hints(cls)
    rows = []
    for name, field in settings_fields(cls).items():
        key = f"{prefix}.{name}"
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            rows += _rows(hint, key)
        else:
            rows.append((key, describe(hint), _default(field)))
    return rows


def parameter_table(section: str) -> list[tuple[str, str, Any]]:
    """(dotted key, type in words, default) of every parameter of ``section``, nested
    settings walked in turn (``sampling.protocol.batch_size``); the default of a parameter
    that must be given is `REQUIRED`."""
    if section not in PARAMETER_SECTIONS:
        raise KeyError(f"no parameter section {section!r}; known: {', '.join(PARAMETER_SECTIONS)}")
    return _rows(PARAMETER_SECTIONS[section], section)


def check_parameters(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of every known section that ``parameters`` holds (a `ParameterError`
    names the first bad or unknown key); other top-level keys (``hardware``) are left
    alone."""
    return {
        section: from_settings(cls, parameters[section], section)
        for section, cls in PARAMETER_SECTIONS.items()
        if section in parameters
    }


def _as_yaml(value: Any) -> str:
    """A default as it would be written in a parameters file."""
    if value is REQUIRED:
        return "(required)"
    if dataclasses.is_dataclass(value):
        value = dataclasses.asdict(value)
    return json.dumps(value, default=str).replace('"', "")


def _classes(cls: type) -> list[type]:
    """``cls`` and the settings classes nested in it, in field order."""
    found = [cls]
    for name, hint in typing.get_type_hints(cls).items():
        if name in settings_fields(cls) and dataclasses.is_dataclass(hint):
            found += [c for c in _classes(hint) if c not in found]
    return found


def _doc_lines(cls: type) -> list[str]:
    """A settings class's docstring as Markdown (its reST literals as code spans, its
    bullet list set off by a blank line)."""
    lines = inspect.cleandoc(cls.__doc__ or "").replace("``", "`").splitlines()
    out: list[str] = []
    for line in lines:
        if line.startswith("- ") and out and not out[-1].startswith(("- ", "  ")) and out[-1]:
            out.append("")
        out.append(line)
    return out


def markdown() -> str:
    """The parameter reference of the docs: per section, what its settings classes say of
    their fields, then every key with its default and type."""
    lines = [
        "# Parameters",
        "",
        "Every parameter of every pipeline, with its default: the defaults of the settings",
        "classes, their only place. `conf/base/parameters_<pipeline>.yml` sets only what this",
        "project changes; set a key there, in `conf/local/` (per machine) or for one run with",
        '`kedro run --params "<key>=<value>"`. A misspelt key or a value of the wrong type stops',
        "the run before any work, naming the parameter. This page is generated",
        "(`python -m ofa_latency_kedro.pipelines.parameters --markdown > docs/parameters.md`)",
        "and a test keeps it equal to the code.",
    ]
    for section, cls in PARAMETER_SECTIONS.items():
        lines += ["", f"## `{section}`", ""]
        for nested in _classes(cls):
            lines += [f"`{nested.__name__}`:", "", *_doc_lines(nested), ""]
        lines += ["| parameter | default | type |", "|---|---|---|"]
        for key, kind, default in parameter_table(section):
            lines.append(f"| `{key}` | `{_as_yaml(default)}` | {kind} |")
    return "\n".join(lines) + "\n"


def main(arguments: list[str]) -> None:
    """Print key, type and default of every parameter of the sections named (all when
    none), or the Markdown reference with ``--markdown``."""
    if arguments == ["--markdown"]:
        sys.stdout.write(markdown())
        return
    for section in arguments or list(PARAMETER_SECTIONS):
        sys.stdout.write(f"params:{section} ({PARAMETER_SECTIONS[section].__name__})\n")
        for key, kind, default in parameter_table(section):
            sys.stdout.write(f"  {key:<40} {default!r:<22} {kind}\n")


if __name__ == "__main__":
    main(sys.argv[1:])
