"""Observers: named in the spec, validated by their own Options, isolated when they fail."""

from __future__ import annotations

import json
import logging
import signal
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner

import tunedag
from tunedag import InterruptedStudy, Observer, PluginError, SpecError, TrialRecord, hookimpl
from tunedag.cli import main
from tunedag.registry import make_plugins
from tunedag.schema import spec_schema

SPEC = """\
name: observed
seed: 3
data: {{source: "sklearn:iris"}}
split:
  test: {{fraction: 0.25, stratify: true}}
  validation: {{method: stratified_kfold, folds: 3}}
pipeline:
  - {{name: model, estimator: sklearn.linear_model.LogisticRegression, params: {{max_iter: 200}}}}
space:
  model__C: {{type: float, low: 0.01, high: 10.0, log: true}}
objective: {{metric: accuracy}}
budget: {{trials: 4}}
storage: sqlite:///{storage}
{observers}"""


def write_spec(tmp_path: Path, observers: str = "") -> Path:
    path = tmp_path / "spec.yaml"
    text = SPEC.format(storage=tmp_path / "study.sqlite", observers=observers)
    path.write_text(text)
    return path


class Recorder(Observer):
    """Records every hook call, with its options' label, in a list all instances share."""

    name = "recorder"
    calls: ClassVar[list[str]] = []

    class Options(Observer.Options):
        label: str = "r"
        fail_in: str | None = None
        fail_with: str = "ConnectionError"

    def _note(self, hook: str, detail: object = "") -> None:
        Recorder.calls.append(f"{self.options.label}:{hook}{detail}")
        if hook == self.options.fail_in:
            if self.options.fail_with == "SystemExit":
                raise SystemExit(5)
            if self.options.fail_with == "SIGTERM":  # as the driver's handler raises it
                raise InterruptedStudy(signal.SIGTERM)
            raise ConnectionError("tracking server down")

    def before_study(self, study: Any) -> None:
        self._note("before_study", f"({study.name})")

    def before_trial(self, study: Any, trial: TrialRecord) -> None:
        self._note("before_trial", trial.number)

    def after_trial(self, study: Any, trial: TrialRecord) -> None:
        self._note("after_trial", trial.number)

    def after_study(self, study: Any, result: Any) -> None:
        self._note("after_study", f"({result.counts['complete']})")

    def close(self) -> None:
        self._note("close")


class NeedsPackage(Observer):
    name = "needs-package"

    @classmethod
    def check_environment(cls) -> list[str]:
        return ["observer 'needs-package' needs the package 'nowhere'"]


class ObserverPlugin:
    @hookimpl
    def register_observers(self, register: Any) -> None:
        register(Recorder)
        register(NeedsPackage)


@pytest.fixture
def plugins() -> tunedag.registry.Plugins:
    Recorder.calls = []
    return make_plugins([ObserverPlugin()], autoload=False)


def test_a_listed_observer_sees_the_run_in_order_with_its_options(
    tmp_path: Path, plugins: Any
) -> None:
    observers = "observers: [{name: recorder, options: {label: a}}]\n"
    spec = tunedag.load_spec(write_spec(tmp_path, observers), plugins)
    tunedag.run(spec, plugins=plugins)
    trials = [c for c in Recorder.calls if "trial" in c]
    assert Recorder.calls[0] == "a:before_study(observed)"
    assert sorted(trials) == sorted(
        [f"a:before_trial{n}" for n in range(4)] + [f"a:after_trial{n}" for n in range(4)]
    )
    assert Recorder.calls[-2:] == ["a:after_study(4)", "a:close"]


def test_an_observer_the_spec_does_not_list_does_not_run(tmp_path: Path, plugins: Any) -> None:
    spec = tunedag.load_spec(write_spec(tmp_path), plugins)
    result = tunedag.run(spec, plugins=plugins)
    assert result.counts["complete"] == 4 and Recorder.calls == []


def test_each_listed_observer_runs_with_its_own_options(tmp_path: Path, plugins: Any) -> None:
    observers = (
        "observers:\n"
        "  - {name: recorder, options: {label: a}}\n"
        "  - {name: recorder, options: {label: b}}\n"
    )
    spec = tunedag.load_spec(write_spec(tmp_path, observers), plugins)
    tunedag.run(spec, plugins=plugins, max_new_trials=1)
    assert Recorder.calls[:2] == ["a:before_study(observed)", "b:before_study(observed)"]
    assert Recorder.calls[-2:] == ["a:close", "b:close"]


def test_an_observer_that_raises_is_logged_and_the_study_completes(
    tmp_path: Path, plugins: Any, caplog: pytest.LogCaptureFixture
) -> None:
    observers = "observers: [{name: recorder, options: {fail_in: after_trial}}]\n"
    spec = tunedag.load_spec(write_spec(tmp_path, observers), plugins)
    with caplog.at_level(logging.WARNING, logger="tunedag"):
        result = tunedag.run(spec, plugins=plugins)
    assert result.finished and result.counts["complete"] == 4
    assert sum(c.startswith("r:after_trial") for c in Recorder.calls) == 4
    assert "r:after_study(4)" in Recorder.calls
    assert "'recorder' raised in hook 'after_trial'" in caplog.text
    assert "tracking server down" in caplog.text


def test_an_observer_that_calls_sys_exit_is_logged_and_the_study_completes(
    tmp_path: Path, plugins: Any, caplog: pytest.LogCaptureFixture
) -> None:
    observers = (
        "observers: [{name: recorder, options: {fail_in: after_trial, fail_with: SystemExit}}]\n"
    )
    spec = tunedag.load_spec(write_spec(tmp_path, observers), plugins)
    with caplog.at_level(logging.WARNING, logger="tunedag"):
        result = tunedag.run(spec, plugins=plugins)
    assert result.finished and result.counts["complete"] == 4
    assert "'recorder' raised in hook 'after_trial': SystemExit: 5" in caplog.text


def test_a_signal_during_an_observer_hook_stops_the_run(tmp_path: Path, plugins: Any) -> None:
    observers = (
        "observers: [{name: recorder, options: {fail_in: after_study, fail_with: SIGTERM}}]\n"
    )
    spec = tunedag.load_spec(write_spec(tmp_path, observers), plugins)
    with pytest.raises(InterruptedStudy) as stopped:
        tunedag.run(spec, plugins=plugins)
    assert stopped.value.exit_code == 143


def test_an_observer_that_fails_to_start_is_left_out_of_the_run(
    tmp_path: Path, plugins: Any, caplog: pytest.LogCaptureFixture
) -> None:
    observers = "observers: [{name: recorder, options: {fail_in: before_study}}]\n"
    spec = tunedag.load_spec(write_spec(tmp_path, observers), plugins)
    with caplog.at_level(logging.WARNING, logger="tunedag"):
        result = tunedag.run(spec, plugins=plugins)
    assert result.finished and Recorder.calls == ["r:before_study(observed)"]
    assert "left out for the rest of this run" in caplog.text


def test_observers_made_by_the_caller_run_besides_the_spec_ones(
    tmp_path: Path, plugins: Any
) -> None:
    spec = tunedag.load_spec(write_spec(tmp_path), plugins)
    mine = Recorder(Recorder.Options(label="mine"))
    tunedag.run(spec, plugins=plugins, observers=[mine])
    assert Recorder.calls[0] == "mine:before_study(observed)"
    assert Recorder.calls[-1] == "mine:close"


def test_what_an_observer_changes_in_a_trial_or_result_never_reaches_the_study(
    tmp_path: Path, plugins: Any
) -> None:
    class Meddler(Observer):
        name = "meddler"

        def before_trial(self, study: Any, trial: TrialRecord) -> None:
            trial.params["model__C"] = 0.01  # a tracker "normalising" in place

        def after_trial(self, study: Any, trial: TrialRecord) -> None:
            trial.value = 99.0

        def after_study(self, study: Any, result: Any) -> None:
            result.counts["complete"] = 0

    runs = []
    for folder, observers in (("plain", []), ("meddled", [Meddler()])):
        (tmp_path / folder).mkdir()
        spec = tunedag.load_spec(write_spec(tmp_path / folder), plugins)
        runs.append(tunedag.run(spec, plugins=plugins, observers=observers, allow_second_look=True))
    plain, meddled = runs
    assert meddled.counts["complete"] == 4
    assert [(t.params, t.value) for t in meddled.trials] == [
        (t.params, t.value) for t in plain.trials
    ]


def test_an_interrupted_run_still_closes_its_observers(tmp_path: Path, plugins: Any) -> None:
    class Interrupter(Observer):
        name = "interrupter"

        def after_trial(self, study: Any, trial: TrialRecord) -> None:
            raise KeyboardInterrupt  # as SIGINT arriving in a hook: not an observer failure

    observers = "observers: [{name: recorder}]\n"
    spec = tunedag.load_spec(write_spec(tmp_path, observers), plugins)
    with pytest.raises(KeyboardInterrupt):
        tunedag.run(spec, plugins=plugins, observers=[Interrupter()])
    assert Recorder.calls[-1] == "r:close"
    assert "r:after_study(1)" not in Recorder.calls


@pytest.mark.parametrize(
    ("observers", "code", "path", "says"),
    [
        (
            "observers: [{name: recordr}]\n",
            78,
            "observers[0].name",
            "unknown observer 'recordr'; did you mean 'recorder'?",
        ),
        (
            "observers: [{name: recorder, options: {lable: x}}]\n",
            65,
            "observers[0].options.lable",
            "observer 'recorder' has no option 'lable' (options: label, fail_in, fail_with)",
        ),
        (
            "observers: [{name: recorder}, {name: needs-package}]\n",
            78,
            "observers[1].name",
            "observer 'needs-package' needs the package 'nowhere'",
        ),
    ],
)
def test_observer_mistakes_are_located_spec_errors(
    tmp_path: Path, plugins: Any, observers: str, code: int, path: str, says: str
) -> None:
    with pytest.raises(SpecError) as caught:
        tunedag.load_spec(write_spec(tmp_path, observers), plugins)
    assert caught.value.exit_code == code
    problem = caught.value.problems[0]
    assert problem.path == path and problem.line == 14, problem
    assert says in problem.message


def test_observer_hooks_as_bare_functions_are_refused_with_the_way_forward() -> None:
    class OldStyle:
        @hookimpl
        def after_trial(self, trial: TrialRecord) -> None:
            pass

    with pytest.raises(PluginError, match=r"unknown hook 'after_trial'.*tunedag\.Observer"):
        make_plugins([OldStyle()], autoload=False)


def test_plugins_lists_observers_with_their_options(plugins: Any) -> None:
    listing = CliRunner().invoke(main, ["plugins", "--json"])
    assert listing.exit_code == 0
    rows = json.loads(listing.output)
    assert all(r["kind"] in ("sampler", "pruner", "executor", "observer") for r in rows)
    assert plugins.provided["observer"]["recorder"].cls is Recorder


def test_the_schema_offers_each_observer_with_its_options(plugins: Any) -> None:
    items = spec_schema(plugins)["properties"]["observers"]["items"]["oneOf"]
    recorder = next(v for v in items if v["properties"]["name"]["const"] == "recorder")
    assert set(recorder["properties"]["options"]["properties"]) == {"label", "fail_in", "fail_with"}
