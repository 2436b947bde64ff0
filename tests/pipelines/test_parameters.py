"""The parameter reference: every section's settings class, its keys, types and defaults, and
the project's parameter files checked against them."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from ofa_latency_kedro.errors import ParameterError
from ofa_latency_kedro.measurement import Protocol
from ofa_latency_kedro.nas import EvolutionSettings
from ofa_latency_kedro.pipelines.parameters import (
    PARAMETER_SECTIONS,
    REQUIRED,
    check_parameters,
    main,
    markdown,
    parameter_table,
)
from ofa_latency_kedro.settings_dict import from_settings
from tests.helpers import PROJECT_ROOT

#: The sections whose parameter files this part of the project keeps.
OWN_FILES = {
    "sampling": "parameters_sampling.yml",
    "encoding": "parameters_encoding.yml",
    "nas": "parameters_nas.yml",
    "ray": "parameters.yml",
}


def nested(rows: list[tuple[str, str, object]]) -> dict:
    """``{a: {b: default}}`` from rows keyed ``section.a.b`` (the section dropped)."""
    tree: dict = {}
    for key, _, default in rows:
        *parents, leaf = key.split(".")[1:]
        branch = tree
        for parent in parents:
            branch = branch.setdefault(parent, {})
        branch[leaf] = default
    return tree


def test_nested_settings_are_walked_with_dotted_keys():
    rows = {key: (kind, default) for key, kind, default in parameter_table("sampling")}
    assert rows["sampling.num_subnets"] == ("an integer", 200)
    assert rows["sampling.protocol.batch_size"] == ("an integer", Protocol().batch_size)
    assert rows["sampling.protocol.statistic"] == ("one of 'median', 'min', 'mean'", "median")
    assert rows["sampling.ray.address"] == ("a text or null", None)
    assert "sampling.protocol" not in rows and "sampling.ray" not in rows


def test_inherited_settings_are_listed_with_their_defaults():
    rows = {key: default for key, _, default in parameter_table("nas")}
    for field in dataclasses.fields(EvolutionSettings):
        assert rows[f"nas.{field.name}"] == field.default
    assert rows["nas.constraints_ms"] == "auto" and rows["nas.verify_rounds"] == 3


def test_a_parameter_without_default_is_required():
    rows = {key: default for key, _, default in parameter_table("finetuning")}
    assert rows["finetuning.target"] is REQUIRED and repr(REQUIRED) == "required"
    with pytest.raises(KeyError, match="no parameter section 'sampler'; known: sampling"):
        parameter_table("sampler")


@pytest.mark.parametrize("section", sorted(PARAMETER_SECTIONS))
def test_every_key_once_and_the_defaults_build_the_default_settings(section: str):
    rows = parameter_table(section)
    keys = [key for key, _, _ in rows]
    assert len(keys) == len(set(keys)) and all(k.startswith(f"{section}.") for k in keys)
    cls = PARAMETER_SECTIONS[section]
    given = {k: v for k, v in nested(rows).items() if v is not REQUIRED}
    required = {k.split(".", 1)[1]: "x" for k, _, v in rows if v is REQUIRED}
    assert from_settings(cls, {**given, **required}, section) == cls(**required)


@pytest.mark.parametrize(("section", "filename"), sorted(OWN_FILES.items()))
def test_the_project_files_set_known_keys_and_no_default(section: str, filename: str):
    values = yaml.safe_load((PROJECT_ROOT / "conf" / "base" / filename).read_text())[section]
    check_parameters({section: values})
    defaults = nested(parameter_table(section))

    def repeated(given: dict, default: dict, prefix: str) -> list[str]:
        found = []
        for key, value in given.items():
            if isinstance(value, dict) and isinstance(default.get(key), dict):
                found += repeated(value, default[key], f"{prefix}.{key}")
            elif default.get(key) == value:
                found.append(f"{prefix}.{key}")
        return found

    assert repeated(values, defaults, section) == []


def test_check_parameters_names_the_bad_key_and_leaves_other_sections_alone():
    settings = check_parameters({"nas": {"generations": 3}, "hardware": {"box": {}}})
    assert set(settings) == {"nas"} and settings["nas"].generations == 3
    with pytest.raises(ParameterError, match="unknown parameter 'sampling.protocol.round'"):
        check_parameters({"sampling": {"protocol": {"round": 3}}})


def test_the_table_prints(capsys):
    main(["ray", "encoding"])
    out = capsys.readouterr().out
    assert out.startswith("params:ray (RaySettings)\n")
    assert "encoding.on_bad_rows" in out and "one of 'raise', 'skip'" in out


def test_the_docs_parameter_reference_is_generated_from_the_settings():
    page = PROJECT_ROOT / "docs" / "parameters.md"
    assert page.read_text() == markdown(), (
        "docs/parameters.md is out of date: python -m ofa_latency_kedro.pipelines.parameters "
        "--markdown > docs/parameters.md"
    )
