"""Reading spec files: YAML 1.2 scalars, JSON and TOML, positions, defaults, the Python API."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

import tunedag
from tunedag.errors import Problem, SpecError, SpecNotFoundError
from tunedag.spec.loader import read_document, read_yaml
from tunedag.spec.models import (
    CategoricalDimension,
    FloatDimension,
    IntDimension,
    parse_duration,
)


def test_yaml_1_2_scalars() -> None:
    document = read_yaml(
        "s.yaml",
        "a: no\nb: 1e-3\nc: yes\nd: on\ne: off\nf: 1.0e+3\ng: 010\nh: ~\ni: true\nj: '5'\n",
    )
    data = document.data
    assert data["a"] == "no" and data["c"] == "yes" and data["d"] == "on" and data["e"] == "off"
    assert data["b"] == 0.001 and type(data["b"]) is float
    assert data["f"] == 1000.0 and type(data["f"]) is float
    assert data["g"] == 10 and type(data["g"]) is int  # no YAML 1.1 octal
    assert data["h"] is None and data["i"] is True and data["j"] == "5"


def test_no_stays_a_string_and_1e_minus_3_a_float_in_a_spec(
    base_spec_yaml: str, spec_file: Callable[..., Path]
) -> None:
    # YAML 1.1 would read yes/no/on as booleans and `1e-3` (no dot) as a string.
    text = base_spec_yaml.replace("low: 1.0e-3", "low: 1e-3").replace(
        "[rbf, poly]", "[rbf, poly, no, yes, on]"
    )
    spec = tunedag.load_spec(spec_file(text))
    dim = spec.space["model__C"]
    assert isinstance(dim, FloatDimension) and dim.low == 0.001 and type(dim.low) is float
    kernel = spec.space["model__kernel"]
    assert isinstance(kernel, CategoricalDimension)
    assert kernel.choices == ["rbf", "poly", "no", "yes", "on"]


def test_positions_of_keys_and_list_items() -> None:
    text = "a: 1\nb:\n  c: {d: 2, e: 3}\n  f:\n    - x\n    - {g: 4}\n"
    document = read_yaml("s.yaml", text)
    assert document.positions[("a",)] == (1, 1)
    assert document.positions[("b", "c")] == (3, 3)
    assert document.positions[("b", "c", "e")] == (3, 13)
    assert document.positions[("b", "f", 1)] == (6, 7)
    assert document.positions[("b", "f", 1, "g")] == (6, 8)


def test_a_problem_falls_back_to_the_nearest_known_position() -> None:
    document = read_yaml("s.yaml", "a:\n  b: 1\n")
    problem = document.problem(("a", "b", "c", 0), "broken")
    assert (problem.line, problem.column, problem.path) == (2, 3, "a.b.c[0]")
    assert str(problem) == "s.yaml:2:3: a.b.c[0]: broken"
    assert str(Problem("", "whole file", "s.yaml")) == "s.yaml: whole file"


def test_json_spec_loads_with_positions(
    base_spec_yaml: str, spec_file: Callable[..., Path]
) -> None:
    from ruamel.yaml import YAML

    data = YAML(typ="safe").load(base_spec_yaml)
    path = spec_file(json.dumps(data, indent="\t"), "spec.json")  # tabs are fine in JSON
    spec = tunedag.load_spec(path)
    assert spec.name == "base" and spec.pipeline is not None and len(spec.pipeline) == 2
    document = read_document(path)
    assert document.positions[("budget", "trials")][0] > document.positions[("budget",)][0]


def test_json_escapes_load(base_spec_yaml: str, spec_file: Callable[..., Path]) -> None:
    from ruamel.yaml import YAML

    data = YAML(typ="safe").load(base_spec_yaml)
    text = json.dumps(data).replace('"base"', '"ba\\u0073e"')
    assert tunedag.load_spec(spec_file(text, "spec.json")).name == "base"


def test_toml_spec_loads_with_positions(spec_file: Callable[..., Path]) -> None:
    text = """\
name = "t"
[data]
source = "sklearn:iris"
[split.test]
fraction = 0.25
[[pipeline]]
name = "model"
estimator = "sklearn.linear_model.LogisticRegression"
params = { max_iter = 500 }
[space.model__C]
type = "float"
low = 1e-3
high = 10.0
log = true
[objective]
metric = "accuracy"
"""
    path = spec_file(text, "spec.toml")
    spec = tunedag.load_spec(path)
    assert spec.pipeline is not None and spec.pipeline[0].params == {"max_iter": 500}
    document = read_document(path)
    assert document.positions[("pipeline", 0)] == (6, 1)
    assert document.positions[("pipeline", 0, "estimator")] == (8, 1)
    assert document.positions[("space", "model__C", "low")] == (12, 1)


def test_defaults(base_spec_yaml: str, spec_file: Callable[..., Path]) -> None:
    spec = tunedag.load_spec(spec_file(base_spec_yaml))
    assert spec.pruner.name == "none"
    assert spec.execution.workers == 1 and spec.execution.executor == "local"
    assert spec.storage_url == "sqlite:///.tunedag/base.sqlite"
    assert spec.objective.direction is None
    assert spec.split.validation.shuffle is True
    degree = spec.space["model__degree"]
    assert isinstance(degree, IntDimension) and degree.when == {"model__kernel": "poly"}


@pytest.mark.parametrize(
    ("written", "seconds"),
    [
        ("90s", 90.0),
        ("30m", 1800.0),
        ("2h", 7200.0),
        ("1.5h", 5400.0),
        ("250ms", 0.25),
        ("1d", 86400.0),
        (45, 45),
        ("45", 45.0),
    ],
)
def test_durations(written: object, seconds: float) -> None:
    assert parse_duration(written) == seconds


def test_budget_durations_in_a_spec(base_spec_yaml: str, spec_file: Callable[..., Path]) -> None:
    text = base_spec_yaml.replace("trials: 5", "trials: 5, time: 30m, trial_timeout: 90s")
    spec = tunedag.load_spec(spec_file(text))
    assert spec.budget.time == 1800.0 and spec.budget.trial_timeout == 90.0


def test_relative_data_paths_resolve_against_the_spec_file(
    base_spec_yaml: str,
    spec_file: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "d.csv").write_text("a,b,y\n1,2,0\n3,4,1\n")
    text = base_spec_yaml.replace(
        "source: sklearn:breast_cancer", "source: csv:../data/d.csv\n  target: y"
    )
    path = spec_file(text, "specs/spec.yaml")
    monkeypatch.chdir(tmp_path / "data")  # the cwd does not matter
    assert tunedag.load_spec(path).data.source == "csv:../data/d.csv"


def test_api_raises_spec_error_with_located_problems(
    base_spec_yaml: str, spec_file: Callable[..., Path]
) -> None:
    path = spec_file(base_spec_yaml.replace("trials: 5", "trails: 5").replace("roc_auc", "roc_acu"))
    with pytest.raises(SpecError) as raised:
        tunedag.load_spec(path)
    (problem,) = raised.value.problems  # type errors stop before checks of meaning
    assert problem.path == "budget.trails" and problem.line == 17 and problem.file == str(path)
    assert raised.value.exit_code == 65


def test_api_unknown_names_exit_78(base_spec_yaml: str, spec_file: Callable[..., Path]) -> None:
    path = spec_file(base_spec_yaml.replace("name: random}", "name: sobol}"))
    with pytest.raises(SpecError) as raised:
        tunedag.load_spec(path)
    assert raised.value.exit_code == 78
    assert raised.value.problems[0].path == "sampler.name"


def test_api_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecNotFoundError) as raised:
        tunedag.load_spec(tmp_path / "nope.yaml")
    assert raised.value.exit_code == 66


def test_model_errors_name_their_key_outside_the_loader() -> None:
    """The Python models carry the key a cross-field rule is about (used by the loader)."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as raised:
        FloatDimension(type="float", low=5.0, high=1.0)
    (error,) = raised.value.errors()
    assert error["type"] == "spec_invalid" and error["ctx"]["spec_loc"] == ("low",)


def test_group_folds_with_a_mixing_test_split_are_refused(tmp_path: Path) -> None:
    spec = tmp_path / "groups.yaml"
    source = (Path(__file__).resolve().parents[1] / "specs" / "groups.yaml").read_text()
    spec.write_text(source.replace("{fraction: 0.2, groups: patient_id}", "{fraction: 0.2}"))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "patients.csv").write_bytes(
        (Path(__file__).resolve().parents[1] / "specs" / "data" / "patients.csv").read_bytes()
    )
    with pytest.raises(SpecError) as caught:
        tunedag.load_spec(spec)
    (problem,) = caught.value.problems
    assert problem.path == "split.test.fraction" and "add `groups: patient_id`" in problem.message
