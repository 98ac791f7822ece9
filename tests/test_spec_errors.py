"""Broken specs: each one is refused with the right exit code, its file:line:col, its field path
and a message that says what to write instead, and never with a traceback.

Every case is an edit of the valid base spec in conftest.py, run through `tunedag validate`
in-process (click's CliRunner); test_cli_validate.py runs a few through a real subprocess.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import Result

INVALID, NOT_FOUND, UNKNOWN_NAME = 65, 66, 78


@dataclass(frozen=True)
class Case:
    id: str
    edits: tuple[tuple[str, str], ...]  # (old, new) replacements of the base text, in order
    code: int
    path: str | None  # the field path printed before the message
    at: str | None  # the text at the reported line:col, found in the edited spec
    says: tuple[str, ...] = ()  # substrings of the message
    nth: int = 1  # which occurrence of `at`
    append: str = field(default="")  # text added at the end of the spec

    def text(self, base: str) -> str:
        for old, new in self.edits:
            assert old in base, f"case {self.id}: {old!r} is not in the base spec"
            base = base.replace(old, new, 1)
        return base + self.append


SVC = "estimator: sklearn.svm.SVC}"
SPACE = """\
space:
  model__C: {type: float, low: 1.0e-3, high: 1.0e+3, log: true}
  model__kernel: {type: categorical, choices: [rbf, poly]}
  model__degree: {type: int, low: 2, high: 4, when: {model__kernel: poly}}
"""
PIPELINE = """\
pipeline:
  - {name: scale, estimator: sklearn.preprocessing.StandardScaler}
  - {name: model, estimator: sklearn.svm.SVC}
"""
X_SPACE = "space:\n  x: {type: float, low: 0, high: 1}\n"
TRIAL = 'trial: {function: "no_such_module_xyz:objective"}\n'
C_DIM = "{type: float, low: 1.0e-3, high: 1.0e+3, log: true}"

# fmt: off
CASES = [
    # ---------------------------------------------------------------- unknown keys
    Case("unknown-top-level-key", (), INVALID, "sampeler", "sampeler",
         ("unknown key 'sampeler'", "did you mean 'sampler'?"),
         append="sampeler: {name: grid}\n"),
    Case("unknown-nested-key", (("trials: 5", "trails: 5"),), INVALID, "budget.trails", "trails",
         ("unknown key 'trails'", "did you mean 'trials'?")),
    Case("unknown-key-in-dimension", (("log: true}", "log: true, grid_point: 5}"),), INVALID,
         "space.model__C.grid_point", "grid_point", ("did you mean 'grid_points'?",)),
    Case("unknown-key-in-step", (("name: scale, estimator", "name: scale, estimater"),),
         INVALID, "pipeline[0].estimater", "estimater", ("did you mean 'estimator'?",)),
    Case("missing-section", (("objective: {metric: roc_auc}\n", ""),), INVALID, "objective",
         None, ("missing required key 'objective'",)),
    # -------------------------------------------------------- plugins and estimators
    Case("misspelt-sampler", (("name: random}", "name: randon}"),), UNKNOWN_NAME,
         "sampler.name", "name: randon",
         ("unknown sampler 'randon'", "did you mean 'random'?")),
    Case("misspelt-pruner", (), UNKNOWN_NAME, "pruner.name", "name: medain",
         ("unknown pruner 'medain'", "did you mean 'median'?"),
         append="pruner: {name: medain}\n"),
    Case("unknown-executor", (), UNKNOWN_NAME, "execution.executor", "executor: daskk",
         ("unknown executor 'daskk'", "local"), append="execution: {executor: daskk}\n"),
    Case("misspelt-observer", (), UNKNOWN_NAME, "observers[0].name", "name: mlfow",
         ("unknown observer 'mlfow'", "did you mean 'mlflow'?"),
         append="observers: [{name: mlfow}]\n"),
    Case("unknown-observer-option", (), INVALID, "observers[0].options.tracking_url",
         "tracking_url", ("observer 'mlflow' has no option 'tracking_url'", "tracking_uri"),
         append="observers: [{name: mlflow, options: {tracking_url: x}}]\n"),
    Case("unknown-estimator", (("sklearn.svm.SVC", "sklearn.svm.SVX"),), UNKNOWN_NAME,
         "pipeline[1].estimator", "estimator: sklearn.svm.SVX",
         ("unknown estimator 'sklearn.svm.SVX'", "did you mean", "'sklearn.svm.SVC'")),
    Case("estimator-outside-sklearn", (("sklearn.svm.SVC", "os.system"),), UNKNOWN_NAME,
         "pipeline[1].estimator", "estimator: os.system", ("allow_imports",)),
    Case("private-estimator-path",
         (("sklearn.svm.SVC", "sklearn.datasets._base.os.system"),), INVALID,
         "pipeline[1].estimator", "estimator: sklearn.datasets._base",
         ("private segment", "refused")),
    Case("non-estimator-sklearn-path",
         (("sklearn.svm.SVC", "sklearn.metrics.accuracy_score"),), INVALID,
         "pipeline[1].estimator", "estimator: sklearn.metrics",
         ("not a scikit-learn estimator class", "refused")),
    Case("non-estimator-allowed-import", (("sklearn.svm.SVC", "os.system"),), INVALID,
         "pipeline[1].estimator", "estimator: os.system", ("not an estimator class",),
         append="allow_imports: [os]\n"),
    Case("unknown-sampler-option",
         (("name: random}", "name: random, options: {n_initial_points: 10}}"),), INVALID,
         "sampler.options.n_initial_points", "n_initial_points",
         ("sampler 'random' has no option 'n_initial_points'",)),
    Case("unknown-pruner-option", (), INVALID, "pruner.options.n_startup_trial",
         "n_startup_trial", ("has no option 'n_startup_trial'", "n_startup_trials"),
         append="pruner: {name: median, options: {n_startup_trial: 3}}\n"),
    # ------------------------------------------------------------------- pipeline
    Case("unknown-fixed-param",
         ((SVC, "estimator: sklearn.svm.SVC, params: {cache_sze: 500}}"),), INVALID,
         "pipeline[1].params.cache_sze", "cache_sze",
         ("SVC has no parameter 'cache_sze'", "did you mean 'cache_size'?")),
    Case("fixed-param-of-estimator-with-required-args",
         ((SVC, "estimator: sklearn.ensemble.VotingClassifier, params: {votin: soft}}"),),
         INVALID, "pipeline[1].params.votin", "votin", ("did you mean 'voting'?",)),
    Case("nested-estimator-not-a-name",
         ((SVC, "estimator: sklearn.multiclass.OneVsRestClassifier, "
                "params: {estimator: {estimator: [1]}}}"),), INVALID,
         "pipeline[1].params.estimator.estimator", "estimator: [1]",
         ("`estimator` needs a dotted name such as sklearn.svm.SVC, not [1]",)),
    Case("nested-estimator-params-not-a-mapping",
         ((SVC, "estimator: sklearn.multiclass.OneVsRestClassifier, "
                "params: {estimator: {estimator: sklearn.svm.SVC, params: 3}}}"),), INVALID,
         "pipeline[1].params.estimator.params", "params: 3",
         ("`params` must be a mapping of name: value, not 3",)),
    Case("duplicate-step-names", (("name: scale", "name: model"),), INVALID,
         "pipeline[1].name", "name: model", ("step names must be unique", "'model'"), nth=2),
    Case("double-underscore-step-name", (("name: scale", "name: my__scale"),), INVALID,
         "pipeline[0].name", "name: my__scale", ("cannot contain '__'",)),
    Case("pipeline-and-trial", (), INVALID, "trial", "trial:", ("not both",),
         append='trial: {function: "mymod:objective"}\n'),
    Case("neither-pipeline-nor-trial", ((PIPELINE, ""), (SPACE, X_SPACE)), INVALID, None,
         "name: base", ("missing `pipeline`",)),
    Case("trial-function-not-importable", ((PIPELINE, ""), (SPACE, TRIAL + X_SPACE)), INVALID,
         "trial.function", "function:", ("cannot import 'no_such_module_xyz'",),
         append="allow_imports: [no_such_module_xyz]\n"),
    Case("trial-function-not-allowed", ((PIPELINE, ""), (SPACE, TRIAL + X_SPACE)), INVALID,
         "trial.function", "function:",
         ("module 'no_such_module_xyz' is not in `allow_imports`",)),
    # ---------------------------------------------------------------------- space
    Case("space-key-names-no-step", (("model__C:", "modl__C:"),), INVALID, "space.modl__C",
         "modl__C", ("does not name a pipeline step", "did you mean 'model__C'?")),
    Case("space-key-names-unknown-param", (("model__C:", "model__CC:"),), INVALID,
         "space.model__CC", "model__CC",
         ("SVC has no parameter 'CC'", "did you mean 'model__C'?")),
    Case("log-with-low-not-positive", (("low: 1.0e-3", "low: 0.0"),), INVALID,
         "space.model__C.low", "low: 0.0", ("log dimension needs a positive `low`",)),
    Case("low-not-below-high", (("low: 2, high: 4", "low: 4, high: 2"),), INVALID,
         "space.model__degree.low", "low: 4", ("`low` must be below `high`",)),
    Case("unknown-dimension-type", (("type: float", "type: flaot"),), INVALID,
         "space.model__C", "model__C:", ("unknown type 'flaot'", "did you mean 'float'?")),
    Case("dimension-without-type", (("type: float, ", ""),), INVALID, "space.model__C",
         "model__C:", ("missing required key 'type'",)),
    Case("dimension-not-a-mapping", ((C_DIM, "[1, 2]"),), INVALID, "space.model__C",
         "model__C:", ("valid dictionary",)),
    Case("values-with-low-and-high", (("low: 2, high: 4,", "low: 2, high: 4, values: [2],"),),
         INVALID, "space.model__degree.values", "values:", ("`values` excludes",)),
    Case("empty-choices", (("[rbf, poly]", "[]"),), INVALID, "space.model__kernel.choices",
         "choices:", ("at least 1 item",)),
    Case("empty-space", ((SPACE, "space: {}\n"),), INVALID, "space", "space:",
         ("at least 1 item",)),
    Case("when-unknown-parameter", (("{model__kernel: poly}", "{model__kernal: poly}"),),
         INVALID, "space.model__degree.when.model__kernal", "model__kernal",
         ("not a parameter of the space", "did you mean 'model__kernel'?")),
    Case("when-value-not-a-choice", (("{model__kernel: poly}", "{model__kernel: sigmoid}"),),
         INVALID, "space.model__degree.when.model__kernel", "model__kernel: sigmoid",
         ("'sigmoid' is not one of", "'rbf', 'poly'")),
    Case("when-value-a-mapping", (("{model__kernel: poly}", "{model__kernel: {poly: 1}}"),),
         INVALID, "space.model__degree.when.model__kernel", "model__kernel: {poly",
         ("`when` names values of 'model__kernel'", "not {'poly': 1}")),
    Case("when-cycle",
         (("choices: [rbf, poly]}", "choices: [rbf, poly], when: {model__degree: 2}}"),),
         INVALID, None, None, ("conditions form a cycle", "space.model__")),
    Case("grid-over-continuous-dimension", (("name: random}", "name: grid}"),), INVALID,
         "sampler.name", "name: grid", ("grid search needs finite dimensions", "'model__C'")),
    # ------------------------------------------------------------------ objective
    Case("unknown-scorer", (("metric: roc_auc", "metric: roc_acu"),), INVALID,
         "objective.metric", "metric: roc_acu",
         ("unknown scorer 'roc_acu'", "did you mean 'roc_auc'")),
    Case("regression-scorer-with-classifier", (("metric: roc_auc", "metric: r2"),), INVALID,
         "objective.metric", "metric: r2", ("scores regressors", "classifier (SVC)")),
    Case("minimize-greater-is-better-scorer",
         (("metric: roc_auc}", "metric: roc_auc, direction: minimize}"),), INVALID,
         "objective.direction", "direction: minimize", ("greater-is-better",)),
    # ------------------------------------------------------------ budget, name, rest
    Case("bad-duration", (("trials: 5", "trials: 5, time: 30 minutes"),), INVALID,
         "budget.time", "time: 30 minutes",
         ("expected a duration such as 90s, 30m or 2h", "'30 minutes'")),
    Case("negative-trials", (("trials: 5", "trials: -3"),), INVALID, "budget.trials",
         "trials: -3", ("greater than or equal to 1", "-3")),
    Case("trials-not-a-number", (("trials: 5", "trials: many"),), INVALID, "budget.trials",
         "trials: many", ("valid integer",)),
    Case("boolean-as-trials", (("trials: 5", "trials: true"),), INVALID, "budget.trials",
         "trials: true", ("expected a number, but got True",)),
    Case("boolean-as-bound", (("low: 2, high: 4", "low: true, high: 4"),), INVALID,
         "space.model__degree.low", "low: true", ("expected a number, but got True",)),
    Case("boolean-among-values",
         (("{type: int, low: 2, high: 4,", "{type: int, values: [2, true],"),), INVALID,
         "space.model__degree.values", "values:", ("expected a number, but got [2, True]",)),
    Case("boolean-as-sampler-option",
         (("name: random}", "name: skopt-gp, options: {n_initial_points: true}}"),), INVALID,
         "sampler.options.n_initial_points", "n_initial_points",
         ("expected a number, but got True",)),
    Case("zero-workers-in-spec", (), INVALID, "execution.workers", "workers: 0",
         ("greater than or equal to 1",), append="execution: {workers: 0}\n"),
    Case("unsafe-study-name", (("name: base", "name: ../x"),), INVALID, "name", "name: ../x",
         ("'../x' is not a safe study name", "starting with a letter or digit")),
    Case("unsupported-storage", (), INVALID, "storage", "storage:", ("sqlite:///",),
         append="storage: mysql://db/studies\n"),
    # ---------------------------------------------------------------- data, split
    Case("missing-data-file",
         (("source: sklearn:breast_cancer", "source: csv:missing.csv\n  target: y"),),
         NOT_FOUND, "data.source", "source: csv:missing.csv", ("missing.csv", "does not exist")),
    Case("unknown-sklearn-dataset", (("sklearn:breast_cancer", "sklearn:breast_cancr"),),
         INVALID, "data.source", "source:",
         ("unknown scikit-learn dataset", "did you mean 'breast_cancer'")),
    Case("csv-without-target", (("sklearn:breast_cancer", "csv:data.csv"),), INVALID,
         "data.source", "source:", ("needs `target: COLUMN`",)),
    Case("group-kfold-without-groups", (("method: stratified_kfold", "method: group_kfold"),),
         INVALID, "split.validation.method", "method: group_kfold",
         ("group_kfold needs `groups",)),
    Case("groups-without-group-kfold", (("folds: 3}", "folds: 3, groups: patient}"),),
         INVALID, "split.validation.groups", "groups: patient",
         ("applies to method group_kfold only",)),
    Case("stratify-with-order-by", (("stratify: true}", "stratify: true, order_by: day}"),),
         INVALID, "split.test.order_by", "order_by: day", ("exclude each other",)),
    Case("test-fraction-above-one", (("fraction: 0.2", "fraction: 1.5"),), INVALID,
         "split.test.fraction", "fraction: 1.5", ("less than 1",)),
    Case("one-fold", (("folds: 3", "folds: 1"),), INVALID, "split.validation.folds",
         "folds: 1", ("greater than or equal to 2",)),
]
# fmt: on


def position(text: str, needle: str, nth: int = 1) -> tuple[int, int]:
    """1-based line and column of the nth occurrence of needle in text."""
    index = -1
    for _ in range(nth):
        index = text.index(needle, index + 1)
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def assert_clean(result: Result) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert "Traceback" not in result.stdout, result.stdout


def test_the_cases_are_many_and_distinct(base_spec_yaml: str) -> None:
    texts = {case.text(base_spec_yaml) for case in CASES}
    assert len({case.id for case in CASES}) == len(CASES)
    assert len(texts) == len(CASES) >= 30
    assert base_spec_yaml not in texts


def test_the_base_spec_is_valid(
    base_spec_yaml: str, spec_file: Callable[..., Path], run_cli: Callable[..., Result]
) -> None:
    result = run_cli("validate", spec_file(base_spec_yaml))
    assert result.exit_code == 0, result.stderr
    assert "ok" in result.stderr


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_broken_spec(
    case: Case,
    base_spec_yaml: str,
    spec_file: Callable[..., Path],
    run_cli: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    text = case.text(base_spec_yaml)
    path = spec_file(text)
    monkeypatch.chdir(tmp_path)  # nothing a broken spec does may land in the repository
    result = run_cli("validate", path)
    assert_clean(result)
    assert result.exit_code == case.code, result.stderr
    assert result.stdout == ""
    if case.at is not None:
        line, column = position(text, case.at, case.nth)
        assert f"{path}:{line}:{column}: " in result.stderr, result.stderr
    else:
        assert f"{path}:" in result.stderr
    if case.path is not None:
        assert f": {case.path}: " in result.stderr, result.stderr
    for fragment in case.says:
        assert fragment in result.stderr, result.stderr


# ------------------------------------------------------------------ file-level problems


def test_several_problems_are_reported_at_once(
    base_spec_yaml: str, spec_file: Callable[..., Path], run_cli: Callable[..., Result]
) -> None:
    text = base_spec_yaml.replace("trials: 5", "trials: 0").replace("fraction: 0.2", "fraction: 2")
    path = spec_file(text + "colour: blue\n")
    result = run_cli("validate", path)
    assert_clean(result)
    assert result.exit_code == INVALID
    lines = [line for line in result.stderr.splitlines() if line.startswith(f"{path}:")]
    assert len(lines) >= 3, result.stderr
    assert any(": budget.trials: " in line for line in lines)
    assert any(": split.test.fraction: " in line for line in lines)
    assert any(": colour: unknown key" in line for line in lines)


def test_problems_of_meaning_are_reported_together(
    base_spec_yaml: str, spec_file: Callable[..., Path], run_cli: Callable[..., Result]
) -> None:
    text = base_spec_yaml.replace("metric: roc_auc", "metric: roc_acu").replace(
        "model__C:", "modl__C:"
    )
    path = spec_file(text)
    result = run_cli("validate", path)
    assert_clean(result)
    assert result.exit_code == INVALID
    assert f"{path}:{position(text, 'modl__C')[0]}:" in result.stderr
    assert f"{path}:{position(text, 'metric: roc_acu')[0]}:" in result.stderr


def test_unknown_name_and_invalid_together_exit_65(
    base_spec_yaml: str, spec_file: Callable[..., Path], run_cli: Callable[..., Result]
) -> None:
    text = base_spec_yaml.replace("name: random}", "name: randon}").replace("roc_auc", "roc_acu")
    result = run_cli("validate", spec_file(text))
    assert result.exit_code == INVALID
    assert "unknown sampler 'randon'" in result.stderr
    assert "unknown scorer 'roc_acu'" in result.stderr


def test_yaml_syntax_error_names_the_line(
    base_spec_yaml: str, spec_file: Callable[..., Path], run_cli: Callable[..., Result]
) -> None:
    text = base_spec_yaml.replace("  validation: {method", "  validation: [method")
    path = spec_file(text)
    result = run_cli("validate", path)
    assert_clean(result)
    assert result.exit_code == INVALID
    assert "not valid YAML" in result.stderr
    line = position(text, "validation: [method")[0]
    assert f"{path}:{line}:" in result.stderr, result.stderr


def test_tab_indentation_names_the_line(
    base_spec_yaml: str, spec_file: Callable[..., Path], run_cli: Callable[..., Result]
) -> None:
    text = base_spec_yaml.replace("  test: {", "\ttest: {")
    path = spec_file(text)
    result = run_cli("validate", path)
    assert_clean(result)
    assert result.exit_code == INVALID
    assert "not valid YAML" in result.stderr
    assert f"{path}:{position(text, chr(9))[0]}:" in result.stderr, result.stderr


def test_duplicate_key_is_an_error(
    base_spec_yaml: str, spec_file: Callable[..., Path], run_cli: Callable[..., Result]
) -> None:
    text = base_spec_yaml + "seed: 2\n"
    path = spec_file(text)
    result = run_cli("validate", path)
    assert_clean(result)
    assert result.exit_code == INVALID
    assert "duplicate key" in result.stderr and "seed" in result.stderr
    assert f"{path}:{position(text, 'seed: 2')[0]}:" in result.stderr


def test_python_tag_is_refused_and_runs_nothing(
    base_spec_yaml: str,
    spec_file: Callable[..., Path],
    run_cli: Callable[..., Result],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    text = base_spec_yaml.replace(
        "seed: 1", 'seed: !!python/object/apply:os.system ["touch PWNED"]'
    )
    path = spec_file(text)
    result = run_cli("validate", path)
    assert_clean(result)
    assert result.exit_code == INVALID
    assert f"{path}:2:1: seed: " in result.stderr
    assert "python/object/apply" in result.stderr and "not allowed" in result.stderr
    assert not (tmp_path / "PWNED").exists()


def test_custom_tag_is_refused(
    base_spec_yaml: str, spec_file: Callable[..., Path], run_cli: Callable[..., Result]
) -> None:
    text = base_spec_yaml.replace("source: sklearn:", "source: !custom sklearn:")
    path = spec_file(text)
    result = run_cli("validate", path)
    assert_clean(result)
    assert result.exit_code == INVALID
    line, column = position(text, "source: !custom")
    expected = f"{path}:{line}:{column}: data.source: YAML tag '!custom' is not allowed"
    assert expected in result.stderr


def test_spec_that_is_not_a_mapping(
    spec_file: Callable[..., Path], run_cli: Callable[..., Result]
) -> None:
    for text in ("- name: x\n", "", "just a string\n"):
        result = run_cli("validate", spec_file(text))
        assert_clean(result)
        assert result.exit_code == INVALID
        assert "must be a mapping" in result.stderr


def test_missing_spec_file_exits_66(tmp_path: Path, run_cli: Callable[..., Result]) -> None:
    result = run_cli("validate", tmp_path / "nope.yaml")
    assert_clean(result)
    assert result.exit_code == NOT_FOUND
    assert "nope.yaml" in result.stderr and "not found" in result.stderr


# ------------------------------------------------------------------------ JSON, TOML


def _json_base(base_spec_yaml: str) -> str:
    import json

    from ruamel.yaml import YAML

    return json.dumps(YAML(typ="safe").load(base_spec_yaml), indent=2)


def test_json_spec_error_has_its_position(
    base_spec_yaml: str, spec_file: Callable[..., Path], run_cli: Callable[..., Result]
) -> None:
    text = _json_base(base_spec_yaml).replace('"trials": 5', '"trials": 5,\n    "trails": 3')
    path = spec_file(text, "spec.json")
    result = run_cli("validate", path)
    assert_clean(result)
    assert result.exit_code == INVALID
    line, column = position(text, '"trails"')
    assert f"{path}:{line}:{column}: budget.trails: unknown key 'trails'" in result.stderr


def test_json_nested_error_points_into_lists(
    base_spec_yaml: str, spec_file: Callable[..., Path], run_cli: Callable[..., Result]
) -> None:
    text = _json_base(base_spec_yaml).replace("sklearn.svm.SVC", "sklearn.svm.SVX")
    path = spec_file(text, "spec.json")
    result = run_cli("validate", path)
    assert result.exit_code == UNKNOWN_NAME
    line = position(text, "sklearn.svm.SVX")[0]
    assert f"{path}:{line}:" in result.stderr and "pipeline[1].estimator" in result.stderr


def test_json_syntax_error_names_the_line(
    base_spec_yaml: str, spec_file: Callable[..., Path], run_cli: Callable[..., Result]
) -> None:
    text = _json_base(base_spec_yaml)
    text = text.replace('"seed": 1,', '"seed": 1,,')
    path = spec_file(text, "spec.json")
    result = run_cli("validate", path)
    assert_clean(result)
    assert result.exit_code == INVALID
    assert f"{path}:{position(text, ',,')[0]}:" in result.stderr


TOML = """\
name = "base"

[data]
source = "sklearn:breast_cancer"

[split.test]
fraction = 0.2
stratify = true

[[pipeline]]
name = "scale"
estimator = "sklearn.preprocessing.StandardScaler"

[[pipeline]]
name = "model"
estimator = "sklearn.svm.SVC"

[space.model__C]
type = "float"
low = 0.001
high = 1000.0
log = true

[objective]
metric = "roc_auc"

[budget]
trials = 5
"""


def test_toml_spec_validates(
    spec_file: Callable[..., Path], run_cli: Callable[..., Result]
) -> None:
    result = run_cli("validate", spec_file(TOML, "spec.toml"))
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize(
    ("old", "new", "code", "path", "at"),
    [
        ("low = 0.001", "low = 0.0", INVALID, "space.model__C.low", "low = 0.0"),
        ("trials = 5", "trials = 5\ntrails = 3", INVALID, "budget.trails", "trails = 3"),
        (
            '"sklearn.svm.SVC"',
            '"sklearn.svm.SVX"',
            UNKNOWN_NAME,
            "pipeline[1].estimator",
            'estimator = "sklearn.svm.SVX"',
        ),
    ],
    ids=["range", "unknown-key", "array-of-tables"],
)
def test_toml_spec_error_has_a_best_effort_line(
    old: str,
    new: str,
    code: int,
    path: str,
    at: str,
    spec_file: Callable[..., Path],
    run_cli: Callable[..., Result],
) -> None:
    text = TOML.replace(old, new)
    spec = spec_file(text, "spec.toml")
    result = run_cli("validate", spec)
    assert_clean(result)
    assert result.exit_code == code, result.stderr
    line, column = position(text, at)
    assert f"{spec}:{line}:{column}: {path}: " in result.stderr, result.stderr


def test_toml_syntax_error_names_the_line(
    spec_file: Callable[..., Path], run_cli: Callable[..., Result]
) -> None:
    text = TOML.replace("fraction = 0.2", "fraction = = 0.2")
    path = spec_file(text, "spec.toml")
    result = run_cli("validate", path)
    assert_clean(result)
    assert result.exit_code == INVALID
    assert f"{path}:{position(text, 'fraction = =')[0]}:" in result.stderr
    assert "not valid TOML" in result.stderr
