"""Hostile spec files: every YAML feature loads or is a located error (exit 65), within bounds.

Each case replays one the outside test of issue 17 found ending in a traceback (exit 70), in
unbounded memory or in quadratic time.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

import tunedag
from tunedag.spec.loader import MAX_SPEC_BYTES, read_document, read_yaml

INVALID = 65


def located(result: Result, path: Path, line: int, *words: str) -> None:
    """Exit 65, no traceback, the message at `path:line:` and naming each of `words`."""
    assert result.exit_code == INVALID, (result.exit_code, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert f"{path}:{line}:" in result.stderr, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def test_a_merge_key_merges_and_explicit_keys_win(
    base_spec_yaml: str, spec_file: Callable[..., Path]
) -> None:
    text = base_spec_yaml.replace(
        "validation: {method: stratified_kfold, folds: 3}",
        "validation: {<<: [{method: kfold, folds: 4}, {folds: 9, shuffle: false}], folds: 3}",
    )
    spec = tunedag.load_spec(spec_file(text))
    validation = spec.split.validation
    assert (validation.method, validation.folds, validation.shuffle) == ("kfold", 3, False)


def test_a_merge_from_an_anchor_places_errors_where_the_value_was_written(
    base_spec_yaml: str, spec_file: Callable[..., Path], run_cli: Callable[..., Result]
) -> None:
    text = base_spec_yaml.replace(
        "  test: {fraction: 0.2, stratify: true}",
        "  test: &t {fraction: 0.2, stratify: true}\n  validation: {<<: *t, folds: 3}",
    ).replace("  validation: {method: stratified_kfold, folds: 3}\n", "")
    path = spec_file(text)
    located(run_cli("validate", path), path, 6, "split.validation.stratify", "unknown key")


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("!!omap [{a: 1}]", ("YAML tag '!!omap' is not supported", "plain mapping")),
        ("!!set {a, b}", ("YAML tag '!!set' is not supported", "write a list")),
        ("!!binary aGk=", ("'!!binary' is not supported",)),
        ("!!python/name:os.system", ("'!!python/name:os.system' is not allowed",)),
        ("!!int twelve", ("'twelve' is not a valid !!int",)),
        ("9" * 5000, ("beyond the range of a 64-bit integer", "5000 characters")),
        ("9223372036854775808", ("beyond the range of a 64-bit integer",)),
        ("1e400", ("beyond the range of a float",)),
    ],
    ids=["omap", "set", "binary", "python-name", "bad-int", "5000-digits", "int64+1", "1e400"],
)
def test_a_refused_value_names_its_field_and_line(
    value: str,
    words: tuple[str, ...],
    base_spec_yaml: str,
    spec_file: Callable[..., Path],
    run_cli: Callable[..., Result],
) -> None:
    path = spec_file(base_spec_yaml.replace("seed: 1", f"seed: {value}"))
    located(run_cli("validate", path), path, 2, "seed: ", *words)


def test_300_levels_of_nesting_is_a_located_error(
    base_spec_yaml: str, spec_file: Callable[..., Path], run_cli: Callable[..., Result]
) -> None:
    path = spec_file(base_spec_yaml + "x: " + "[" * 300 + "]" * 300 + "\n")
    located(run_cli("validate", path), path, 18, "nested more than 64 levels")


def test_a_billion_laughs_is_refused_in_bounded_time_and_memory(
    spec_file: Callable[..., Path], run_cli: Callable[..., Result]
) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
    path = spec_file("\n".join(lines) + "\n")
    assert path.stat().st_size < 1500
    tracemalloc.start()
    started = time.process_time()
    try:
        result = run_cli("validate", path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.process_time() - started < 10
    assert peak < 100 * 2**20
    located(result, path, 6, "more than 200000 values once its aliases are expanded")


def test_an_alias_to_an_anchor_still_open_is_an_error(spec_file: Callable[..., Path]) -> None:
    with pytest.raises(tunedag.SpecError, match="names no anchor before it"):
        read_document(spec_file("a: &a [1, *a]\n"))


def test_a_second_document_is_refused(spec_file: Callable[..., Path]) -> None:
    with pytest.raises(tunedag.SpecError, match=r"spec\.yaml:2:1: a spec file holds one YAML"):
        read_document(spec_file("name: a\n---\nname: b\n"))


def test_a_mapping_as_a_key_is_refused(spec_file: Callable[..., Path]) -> None:
    with pytest.raises(tunedag.SpecError, match=r"spec\.yaml:1:3: a mapping key must be a plain"):
        read_document(spec_file("? {a: 1}\n: 2\n"))


def test_yaml_12_scalars() -> None:
    document = read_yaml(
        "s.yaml",
        "a: no\nb: 1e-3\nc: 0x1F\nd: 0o17\ne: .inf\nf: ~\ng: 2001-12-14\nh: '1'\ni: True\n",
    )
    assert document.data == {
        "a": "no",
        "b": 0.001,
        "c": 31,
        "d": 15,
        "e": float("inf"),
        "f": None,
        "g": "2001-12-14",
        "h": "1",
        "i": True,
    }


def test_a_spec_over_the_size_limit_is_refused_before_parsing(
    spec_file: Callable[..., Path], run_cli: Callable[..., Result]
) -> None:
    path = spec_file("name: x\n" + "#" * MAX_SPEC_BYTES + "\n")
    result = run_cli("validate", path)
    assert result.exit_code == INVALID and "larger than 1,000,000 bytes" in result.stderr


def test_a_spec_near_the_size_limit_loads_in_linear_time(spec_file: Callable[..., Path]) -> None:
    entry = "  p{}: {{type: float, low: 0.1, high: 1.5, log: true}}\n"
    small = "space:\n" + "".join(entry.format(i) for i in range(1_700))
    large = "space:\n" + "".join(entry.format(i) for i in range(17_000))
    assert len(large) < MAX_SPEC_BYTES
    timings = []
    for text in (small, large):
        started = time.process_time()
        document = read_document(spec_file(text))
        timings.append(time.process_time() - started)
    assert document.positions[("space", "p16999")] == (17_001, 3)
    # ten times the text: about ten times the time (quadratic would be a hundred)
    assert timings[1] < 25 * max(timings[0], 0.02)


def test_toml_keys_are_located_in_linear_time(spec_file: Callable[..., Path]) -> None:
    text = 'name = "x"\n[space]\n' + "".join(f"p{i} = {i}\n" for i in range(6_000))
    started = time.process_time()
    document = read_document(spec_file(text, "spec.toml"))
    assert time.process_time() - started < 5  # was 52 CPU-s
    assert document.positions[("space", "p5999")] == (6_002, 1)


def test_toml_limits_match_yaml_limits(spec_file: Callable[..., Path]) -> None:
    with pytest.raises(tunedag.SpecError, match="64-bit integer"):
        read_document(spec_file("seed = 9223372036854775808\n", "spec.toml"))
    with pytest.raises(tunedag.SpecError, match="nested more than 64"):
        read_document(spec_file("x = " + "[" * 100 + "]" * 100 + "\n", "spec.toml"))
    document = read_document(spec_file("when = 1979-05-27\n", "spec.toml"))
    assert document.data == {"when": "1979-05-27"}


def test_bytes_that_are_not_utf8_are_located(
    spec_file: Callable[..., Path], run_cli: Callable[..., Result], tmp_path: Path
) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: x\nnote: caf\xe9\n".encode("latin-1"))
    located(run_cli("validate", path), path, 2, "byte 0xe9 is not UTF-8")
    assert f"{path}:2:10:" in run_cli("validate", path).stderr


@pytest.mark.parametrize("name", ["spec.yaml", "spec.json", "spec.toml"])
def test_control_characters_are_located(
    name: str, spec_file: Callable[..., Path], run_cli: Callable[..., Result]
) -> None:
    path = spec_file(
        'name = "x"\nseed = 1\x07\n' if name.endswith("toml") else "a: 1\nb: \x1b[2J\n", name
    )
    result = run_cli("validate", path)
    assert result.exit_code == INVALID and "control character U+00" in result.stderr
    assert f"{path}:2:" in result.stderr, result.stderr


def test_validate_never_imports_a_trial_function_outside_allow_imports(
    base_spec_yaml: str,
    spec_file: Callable[..., Path],
    run_cli: Callable[..., Result],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The issue's case: `validate` imported the named module and ran its import-time code."""
    (tmp_path / "sneaky.py").write_text(
        "import pathlib\npathlib.Path(__file__).with_name('IMPORTED').touch()\n"
        "def objective(context):\n    return 1.0\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    pipeline = base_spec_yaml[base_spec_yaml.index("pipeline:") : base_spec_yaml.index("space:")]
    text = base_spec_yaml.replace(pipeline, 'trial: {function: "sneaky:objective"}\n')
    text = text.replace(text[text.index("space:") : text.index("objective:")], X_SPACE)
    path = spec_file(text)
    located(run_cli("validate", path), path, 8, "trial.function", "not in `allow_imports`")
    assert not (tmp_path / "IMPORTED").exists()
    private = spec_file(text.replace("sneaky:objective", "sneaky._impl:objective"), "p.yaml")
    assert "private segment" in run_cli("validate", private).stderr
    allowed = spec_file(text + "allow_imports: [sneaky]\n", "allowed.yaml")
    assert run_cli("validate", allowed).exit_code == 0
    assert (tmp_path / "IMPORTED").exists()  # listed: validate may import it


X_SPACE = "space:\n  x: {type: float, low: 0, high: 1}\n"


# -- the smaller items ------------------------------------------------------------------------


def test_trials_csv_cells_that_a_spreadsheet_would_run_are_escaped() -> None:
    from tunedag.report.tables import csv_row
    from tunedag.storage import TrialRecord, TrialState

    trial = TrialRecord(
        number=0,
        state=TrialState.COMPLETE,
        params={"a": '=HYPERLINK("http://x","y")', "b": "@SUM(1)", "c": "-2+3", "d": -2.5},
        value=0.5,
    )
    row = csv_row(trial, ["a", "b", "c", "d"], 0)
    assert row[4:] == ['\'=HYPERLINK("http://x","y")', "'@SUM(1)", "'-2+3", -2.5]


def test_a_proc_file_as_data_never_echoes_its_contents(
    base_spec_yaml: str,
    spec_file: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TUNEDAG_SECRET_PROBE", "hunter2-do-not-print")
    monkeypatch.chdir(tmp_path)
    text = base_spec_yaml.replace(
        "source: sklearn:breast_cancer", "source: csv:/proc/self/environ\n  target: y"
    ).replace("test: {fraction: 0.2, stratify: true}", "test: {fraction: 0.2}")
    spec = tunedag.load_spec(spec_file(text))
    with pytest.raises(tunedag.DataError) as caught:
        tunedag.run(spec)
    assert "the file is empty" in str(caught.value) and caught.value.exit_code == 65
    assert "hunter2" not in str(caught.value)


def test_base_estimator_itself_is_refused(
    base_spec_yaml: str, spec_file: Callable[..., Path], run_cli: Callable[..., Result]
) -> None:
    path = spec_file(base_spec_yaml.replace("sklearn.svm.SVC", "sklearn.base.BaseEstimator"))
    result = run_cli("validate", path)
    assert result.exit_code == INVALID and "is not a scikit-learn estimator class" in result.stderr


def test_sigint_while_a_command_parses_exits_130_cleanly(
    base_spec_yaml: str, spec_file: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's case: SIGINT during spec parsing printed `Aborted!` and exited 1."""
    from click.testing import CliRunner

    from tunedag.cli import main
    from tunedag.spec import validate

    def interrupted(path: object, plugins: object = None) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(validate, "read_document", interrupted)
    result = CliRunner().invoke(main, ["validate", str(spec_file(base_spec_yaml))])
    assert result.exit_code == 130, result.output
    assert "interrupted" in result.output and "Aborted" not in result.output
    assert "Traceback" not in result.output
