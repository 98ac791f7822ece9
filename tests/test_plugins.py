"""The plugin surface: loading, registration errors, fault isolation, the example plugin."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import tunedag
from tunedag import PluginError, Pruner, Sampler, SpecError, TrialRecord, hookimpl, hookspecs
from tunedag.cli import main
from tunedag.plugins.local_executor import LocalExecutor
from tunedag.registry import make_plugins
from tunedag.space import Params

ROOT = Path(__file__).resolve().parents[1]
SPEC = """\
name: plugin-study
seed: 1
data: {{source: "sklearn:iris"}}
split:
  test: {{fraction: 0.25, stratify: true}}
  validation: {{method: stratified_kfold, folds: 3}}
pipeline:
  - {{name: model, estimator: sklearn.linear_model.LogisticRegression, params: {{max_iter: 200}}}}
space:
  model__C: {{type: float, low: 0.01, high: 10.0, log: true}}
objective: {{metric: accuracy}}
sampler: {{name: {sampler}, options: {options}}}
budget: {{trials: {trials}}}
storage: sqlite:///{storage}
"""


def write_spec(
    tmp_path: Path, sampler: str = "random", options: str = "{}", trials: int = 6
) -> Path:
    path = tmp_path / "spec.yaml"
    storage = tmp_path / "study.sqlite"
    path.write_text(SPEC.format(sampler=sampler, options=options, trials=trials, storage=storage))
    return path


def failed_run(tmp_path: Path, plugin: Any, section: str) -> tuple[PluginError, Any]:
    """The PluginError a study ends with, run with ``plugin`` and ``section`` added to the
    spec; and the loaded spec."""
    plugins = make_plugins([plugin], autoload=False)
    path = write_spec(tmp_path)
    path.write_text(f"{path.read_text()}{section}\n")
    spec = tunedag.load_spec(path, plugins)
    with pytest.raises(PluginError) as caught:
        tunedag.run(spec, plugins=plugins)
    return caught.value, spec


class FlakySampler(Sampler):
    """Raises on its fourth proposal until `broken` is switched off."""

    name = "flaky"
    broken = True

    def ask(self, history: Sequence[TrialRecord], n: int) -> list[Params]:
        if FlakySampler.broken and len(history) >= 3:
            raise RuntimeError("lost my random state")
        return [{"model__C": 0.1 * (1 + len(history) + i)} for i in range(n)]


class FlakyPlugin:
    @hookimpl
    def register_samplers(self, register: Any) -> None:
        register(FlakySampler)


def test_a_misspelt_hook_name_fails_at_load() -> None:
    class Misspelt:
        @hookimpl
        def register_sampler(self, register: Any) -> None:  # missing the final "s"
            pass

    with pytest.raises(PluginError, match="register_sampler"):
        make_plugins([Misspelt()], autoload=False)


def test_a_sampler_name_registered_twice_names_both_plugins() -> None:
    class Again:
        @hookimpl
        def register_samplers(self, register: Any) -> None:
            class Random(Sampler):
                name = "random"

                def ask(self, history: Sequence[TrialRecord], n: int) -> list[Params]:
                    return []

            register(Random)

    with pytest.raises(PluginError) as caught:
        make_plugins([Again()], autoload=False)
    message = str(caught.value)
    assert "sampler 'random' is registered twice" in message
    assert "plugin 'random' (tunedag" in message and "Again" in message


def test_registering_a_non_sampler_is_refused() -> None:
    class Wrong:
        @hookimpl
        def register_samplers(self, register: Any) -> None:
            register(dict)

    with pytest.raises(PluginError, match=r"not a subclass of tunedag\.Sampler"):
        make_plugins([Wrong()], autoload=False)


class WrongSampler(Sampler):
    """Proposes ``proposal`` as its one configuration."""

    name = "wrong"
    proposal: Any = None

    def ask(self, history: Sequence[TrialRecord], n: int) -> list[Params]:
        return [WrongSampler.proposal]


class WrongPlugin:
    @hookimpl
    def register_samplers(self, register: Any) -> None:
        register(WrongSampler)


@pytest.mark.parametrize(
    "proposal",
    [{"model__C": "abc"}, {"model__C": True}, {"model__C": float("nan")}, [1.0], {"C": 1.0}],
)
def test_a_proposal_that_is_no_configuration_of_the_space_is_the_sampler_s_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, proposal: Any
) -> None:
    monkeypatch.setattr(WrongSampler, "proposal", proposal)
    plugins = make_plugins([WrongPlugin()], autoload=False)
    spec = tunedag.load_spec(write_spec(tmp_path, sampler="wrong"), plugins)
    with pytest.raises(PluginError, match="which is not in the space") as caught:
        tunedag.run(spec, plugins=plugins)
    assert "sampler 'wrong'" in str(caught.value)


@pytest.mark.parametrize(
    ("dimension", "value", "inside"),
    [
        ({"type": "float", "low": 1e-12, "high": 1e-10, "log": True}, -5e-10, False),
        ({"type": "float", "low": 1e-12, "high": 1e-10, "log": True}, 1e-12 * (1 - 1e-15), True),
        ({"type": "float", "low": 0.0, "high": 1e-10}, -5e-10, False),
        ({"type": "float", "low": 0.0, "high": 1.0}, 1.0 + 1e-12, True),  # round-off
        ({"type": "int", "values": [1, 100]}, True, False),
        ({"type": "int", "values": [1, 100]}, np.int64(100), True),
        ({"type": "int", "values": [1, 100]}, 1.0, False),
        ({"type": "categorical", "choices": [1, 2]}, True, False),
        ({"type": "categorical", "choices": [True, "x"]}, 1, False),
        ({"type": "categorical", "choices": [True, "x"]}, np.True_, True),
    ],
)
def test_a_value_is_inside_its_dimension_by_type_and_by_a_tolerance_of_its_own_scale(
    dimension: dict[str, Any], value: Any, inside: bool
) -> None:
    from pydantic import TypeAdapter

    from tunedag.space import SearchSpace
    from tunedag.spec.models import Dimension

    space = SearchSpace({"p": TypeAdapter(Dimension).validate_python(dimension)})
    assert space.contains({"p": value}) is inside


class BrokenExecutor(LocalExecutor):
    """The local executor, but its third submit raises."""

    name = "broken-executor"

    def submit(self, task: Any) -> None:
        self.submitted = getattr(self, "submitted", 0) + 1
        if self.submitted == 3:
            raise RuntimeError("lost the connection to my queue")
        super().submit(task)


class BrokenExecutorPlugin:
    @hookimpl
    def register_executors(self, register: Any) -> None:
        register(BrokenExecutor)


def test_an_executor_that_raises_is_named_and_the_trials_it_ran_are_kept(
    tmp_path: Path,
) -> None:
    error, spec = failed_run(
        tmp_path, BrokenExecutorPlugin(), "execution: {executor: broken-executor}"
    )
    message = str(error)
    assert error.exit_code == 70
    assert "executor 'broken-executor'" in message and "in submit()" in message
    assert "lost the connection to my queue" in message
    status = tunedag.status(spec)
    assert status is not None and status.counts["running"] == 0  # requeued, to resume


def test_wrong_plugin_options_point_at_the_option(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, sampler="grid", options="{shufle: true}")
    with pytest.raises(SpecError) as caught:
        tunedag.load_spec(spec)
    problem = caught.value.problems[0]
    assert problem.line == 12 and problem.path == "sampler.options.shufle"
    assert "has no option 'shufle'" in problem.message and "tunedag" in problem.message


def test_a_sampler_that_raises_stops_the_study_and_it_resumes_once_fixed(
    tmp_path: Path,
) -> None:
    plugins = make_plugins([FlakyPlugin()], autoload=False)
    spec = tunedag.load_spec(write_spec(tmp_path, sampler="flaky"), plugins)
    with pytest.raises(PluginError) as caught:
        tunedag.run(spec, plugins=plugins)
    assert caught.value.exit_code == 70
    assert "sampler 'flaky'" in str(caught.value) and "lost my random state" in str(caught.value)
    assert tunedag.status(spec).counts["complete"] == 3  # type: ignore[union-attr]

    FlakySampler.broken = False
    try:
        result = tunedag.run(spec, plugins=plugins)
    finally:
        FlakySampler.broken = True
    assert result.counts["complete"] == 6 and result.test_value is not None
    assert [t.number for t in result.trials] == list(range(6))


class AmbiguousPruner(Pruner):
    """Answers with ``answer``: no bool (an array has no single truth value; "no" is true)."""

    name = "ambiguous"
    answer: Any = None

    def prune(self, trial: TrialRecord, step: int, history: Sequence[TrialRecord]) -> bool:
        return AmbiguousPruner.answer  # type: ignore[no-any-return]


class AmbiguousPlugin:
    @hookimpl
    def register_pruners(self, register: Any) -> None:
        register(AmbiguousPruner)


@pytest.mark.parametrize("answer", [np.array([True, False]), "no", 1])
def test_a_pruner_decision_that_is_not_a_bool_is_the_pruner_s_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answer: Any
) -> None:
    monkeypatch.setattr(AmbiguousPruner, "answer", answer)
    error, _ = failed_run(tmp_path, AmbiguousPlugin(), "pruner: {name: ambiguous}")
    assert "pruner 'ambiguous'" in str(error) and "in prune()" in str(error)
    assert f"returned {answer!r}, not True or False" in str(error)


def test_disabled_plugins_are_not_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNEDAG_DISABLED_PLUGINS", "grid, pruners")
    plugins = make_plugins()
    assert "grid" not in plugins.provided["sampler"]
    assert plugins.provided["pruner"] == {}


def test_every_hook_is_documented_with_its_signature() -> None:
    docs = (ROOT / "docs" / "plugins.md").read_text()
    for name, function in inspect.getmembers(hookspecs, inspect.isfunction):
        if not hasattr(function, "tunedag_spec"):
            continue
        signature = f"{name}({', '.join(inspect.signature(function).parameters)})"
        assert f"`{signature}`" in docs, f"docs/plugins.md does not document {signature}"
    for name, function in inspect.getmembers(tunedag.Observer, inspect.isroutine):
        if name.startswith("_"):
            continue
        parameters = [p for p in inspect.signature(function).parameters if p not in ("self", "cls")]
        signature = f"{name}({', '.join(parameters)})"
        assert f"`{signature}`" in docs, f"docs/plugins.md does not document {signature}"


def test_plugins_command_lists_providers_as_json() -> None:
    result = CliRunner().invoke(main, ["plugins", "--json"])
    assert result.exit_code == 0
    (line,) = result.output.splitlines()  # one line, as every --json document
    rows = json.loads(line)
    random = next(r for r in rows if r["kind"] == "sampler" and r["name"] == "random")
    assert random["distribution"] == "tunedag"
    (schema,) = CliRunner().invoke(main, ["schema", "--json"]).output.splitlines()
    assert json.loads(schema)["title"]


@pytest.mark.slow
def test_the_example_plugin_installs_with_pip_and_runs_through_the_cli(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            str(ROOT / "examples" / "tunedag-halton"),
        ],
        check=True,
    )
    tunedag_command = str(Path(sys.executable).with_name("tunedag"))
    listed = subprocess.run(
        [tunedag_command, "plugins"], capture_output=True, text=True, check=True
    )
    assert any(
        line.split()[:2] == ["sampler", "halton"] and "tunedag-halton" in line
        for line in listed.stdout.splitlines()
    )
    spec = write_spec(tmp_path, sampler="halton", options="{scramble: true}")
    ran = subprocess.run(
        [tunedag_command, "run", str(spec), "--json"], capture_output=True, text=True, cwd=tmp_path
    )
    assert ran.returncode == 0, ran.stderr
    events = [json.loads(line) for line in ran.stdout.splitlines()]
    assert events[-1]["event"] == "test_evaluated"
    assert sum(e["event"] == "trial_completed" for e in events) == 6
