"""`tunedag report SPEC --out DIR`: report.html with PNG plots, trials.csv and results.json.

Real studies run first (k-NN on iris, or a custom trial function, 3 folds, a few trials);
the report is then written by the command and read back as a user would: the CSV against
storage, results.json against `status --json`, every image the page names on disk.
The report only reads: its storage file is byte for byte the same afterwards.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import struct
import textwrap
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from helpers import base_spec, cli, db_file, stored_trials, write_spec

import tunedag
from tunedag.report.plots import PLOT_FILES, axis_scale, categories, mark_on_edge
from tunedag.storage import TrialRecord, TrialState

HOSTILE = "<script>alert(1)</script>"
HOSTILE_ERROR = "<img src=x onerror=alert(2)> went wrong"
MATHTEXT = "$x_$"  # broken mathtext: matplotlib raises unless the $ are escaped
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

TRIAL_MODULE = f'''
def score(context):
    """x, reported over three steps; the tag "boom" raises an error with markup in it."""
    if context.params["tag"] == "boom":
        raise ValueError({HOSTILE_ERROR!r})
    x = context.params["x"]
    for step in range(3):
        context.report(step, x * (step + 1) / 3)
    return x
'''


# -- helpers -------------------------------------------------------------------------------------


class Page(HTMLParser):
    """The images and the text of report.html."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def read_page(out: Path) -> tuple[str, Page]:
    html = (out / "report.html").read_text(encoding="utf-8")
    page = Page()
    page.feed(html)
    return html, page


def report(path: Path, out: Path, cwd: Path, *extra: str) -> None:
    result = cli(["report", path, "--out", out, *extra], cwd)
    assert result.exit_code == 0, result.stderr
    assert "report.html" in result.stderr


def status_json(path: Path, cwd: Path) -> dict[str, Any]:
    result = cli(["status", path, "--json"], cwd)
    assert result.exit_code == 0, result.stderr
    payload: dict[str, Any] = json.loads(result.stdout)
    return payload


def csv_rows(out: Path) -> tuple[list[str], list[dict[str, str]]]:
    with (out / "trials.csv").open(newline="", encoding="utf-8") as stream:
        reader = csv.DictReader(stream)
        return list(reader.fieldnames or []), list(reader)


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's header; fails on anything that is not a PNG."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR", f"{path.name} is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return int(width), int(height)


def assert_images_exist(out: Path, page: Page) -> list[str]:
    sources = []
    for image in page.images:
        src, alt = image.get("src") or "", image.get("alt") or ""
        assert src and "/" not in src and ":" not in src, src  # beside report.html
        assert len(alt) > 20, f"{src} has no real alt text"
        width, height = png_size(out / src)
        assert width > 100 and height > 100
        sources.append(src)
    return sources


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cell(value: float | None) -> float | None:
    return None if value is None else float(value)


def parsed(text: str) -> float | None:
    return None if text == "" else float(text)


# -- a finished study with complete, pruned and failed trials ----------------------------------


@pytest.fixture(scope="module")
def knn(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """k-NN on iris, grid in this order: k=3 and 5 complete, 60 is pruned, 500 fails."""
    tmp = tmp_path_factory.mktemp("knn")
    spec = base_spec(
        tmp,
        name="knn-mixed",
        space={"model__n_neighbors": {"type": "int", "values": [3, 5, 60, 500]}},
        sampler={"name": "grid"},
        pruner={"name": "median", "options": {"n_startup_trials": 2}},
        budget={"trials": 4, "max_failed": 2},
    )
    path = write_spec(tmp, spec)
    run = cli(["run", path], tmp)
    assert run.exit_code == 0, run.stderr
    db = db_file(spec)
    before = digest(db)
    out = tmp / "out"
    report(path, out, tmp)
    return {"tmp": tmp, "spec": spec, "path": path, "out": out, "db": db, "before": before}


def test_the_study_under_report_has_every_state(knn: dict[str, Any]) -> None:
    states = [t.state for t in stored_trials(knn["spec"])]
    assert states == [
        TrialState.COMPLETE,
        TrialState.COMPLETE,
        TrialState.PRUNED,
        TrialState.FAILED,
    ]


def test_trials_csv_has_the_contract_columns_and_one_row_a_trial(knn: dict[str, Any]) -> None:
    header, rows = csv_rows(knn["out"])
    assert header == [
        "number",
        "state",
        "value",
        "duration_s",
        "params.model__n_neighbors",
        "fold_0",
        "fold_1",
        "fold_2",
    ]
    trials = stored_trials(knn["spec"])
    assert len(rows) == len(trials)
    for row, trial in zip(rows, trials, strict=True):
        assert int(row["number"]) == trial.number and row["state"] == trial.state.value
        assert parsed(row["value"]) == cell(trial.value)
        assert parsed(row["duration_s"]) == pytest.approx(trial.duration_s)
        assert int(row["params.model__n_neighbors"]) == trial.params["model__n_neighbors"]
        folds = [parsed(row[f"fold_{i}"]) for i in range(3)]
        assert folds == trial.fold_values + [None] * (3 - len(trial.fold_values))
    pruned = next(r for r in rows if r["state"] == "pruned")
    assert pruned["fold_2"] == ""  # stopped before the last fold
    failed = next(r for r in rows if r["state"] == "failed")
    assert failed["value"] == "" and failed["fold_0"] == ""


def test_results_json_is_the_status_object(knn: dict[str, Any]) -> None:
    results = json.loads((knn["out"] / "results.json").read_text(encoding="utf-8"))
    assert results == status_json(knn["path"], knn["tmp"])
    assert results["test"] is not None and results["counts"]["pruned"] == 1


def test_report_html_shows_every_plot_it_draws(knn: dict[str, Any]) -> None:
    _, page = read_page(knn["out"])
    sources = assert_images_exist(knn["out"], page)
    assert sources == list(PLOT_FILES)  # all five: history, params, curves, folds, durations
    text = " ".join(page.text)
    assert "knn-mixed" in text and "finished" in text and "budget" in text
    assert "maximize" in text and "accuracy" in text and "median" in text and "grid" in text
    history = next(i for i in page.images if i["src"] == "history.png")
    assert "failed" in str(history["alt"]) and "bottom edge" in str(history["alt"])
    curves = next(i for i in page.images if i["src"] == "intermediate.png")
    assert "1 pruned" in str(curves["alt"])


def test_report_html_shows_the_best_trial_and_its_test_score(knn: dict[str, Any]) -> None:
    _, page = read_page(knn["out"])
    text = " ".join(" ".join(page.text).split())
    status = status_json(knn["path"], knn["tmp"])
    best, test = status["best"], status["test"]
    assert f"Best trial #{best['number']}" in text
    assert f"{best['value']:.5g}" in text and "over 3 folds" in text
    assert f"{test['value']:.5g}" in text and f"{test['gap']:+.4g}" in text
    assert ("larger than the fold spread explains" in text) is test["flagged"]
    assert "second look" not in text
    error = next(t.error for t in stored_trials(knn["spec"]) if t.state == TrialState.FAILED)
    assert error is not None and error.splitlines()[0] in text  # the first line of the error
    assert "Traceback" not in text


def test_the_report_leaves_storage_untouched(knn: dict[str, Any]) -> None:
    assert digest(knn["db"]) == knn["before"]
    assert sorted(p.name for p in knn["db"].parent.glob("studies.sqlite*")) == ["studies.sqlite"]


# -- hostile values, a log axis, conditional parameters, no test set ----------------------------


@pytest.fixture(scope="module")
def custom(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A custom trial over a log-scaled x, a tag with markup in it, and a conditional depth."""
    tmp = tmp_path_factory.mktemp("custom")
    (tmp / "tdreport.py").write_text(textwrap.dedent(TRIAL_MODULE), encoding="utf-8")
    spec = base_spec(
        tmp,
        name="custom-trial",
        pipeline=None,
        trial={"function": "tdreport:score"},
        allow_imports=["tdreport"],
        space={
            "x": {"type": "float", "values": [0.001, 0.1, 1.0], "log": True},
            "tag": {"type": "categorical", "choices": [HOSTILE, "boom", MATHTEXT]},
            "depth": {"type": "int", "values": [1, 2], "when": {"tag": MATHTEXT}},
        },
        sampler={"name": "grid"},
        budget={"trials": 12, "max_failed": 5},
    )
    path = write_spec(tmp, spec)
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(tmp))
        run = cli(["run", path], tmp)
        assert run.exit_code == 0, run.stderr
        out = tmp / "out"
        out.mkdir()
        (out / "folds.png").write_bytes(b"a plot of an earlier report")  # stale: no folds now
        (out / "results.json").write_text("not json", encoding="utf-8")
        report(path, out, tmp)
    return {"tmp": tmp, "spec": spec, "path": path, "out": out}


def test_markup_from_params_and_errors_is_escaped(custom: dict[str, Any]) -> None:
    html, page = read_page(custom["out"])
    assert HOSTILE not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(2)&gt;" in html
    text = " ".join(page.text)
    assert HOSTILE in text and HOSTILE_ERROR in text  # shown as text, exactly
    assert "<script" not in html.replace("&lt;script", "")  # the page itself runs no script


def test_conditional_parameters_leave_empty_cells(custom: dict[str, Any]) -> None:
    header, rows = csv_rows(custom["out"])
    assert header[:7] == [
        "number",
        "state",
        "value",
        "duration_s",
        "params.x",
        "params.tag",
        "params.depth",
    ]
    assert {r["params.tag"] for r in rows} == {HOSTILE, "boom", MATHTEXT}
    for row in rows:
        assert (row["params.depth"] != "") is (row["params.tag"] == MATHTEXT)
    assert {r["state"] for r in rows if r["params.tag"] == "boom"} == {"failed"}
    assert len(rows) == len(stored_trials(custom["spec"])) == 12


def test_a_log_parameter_gets_a_log_axis(custom: dict[str, Any]) -> None:
    spec = tunedag.load_spec(custom["path"])
    assert axis_scale(spec.space["x"], [0.001, 1.0]) == "log"
    assert axis_scale(spec.space["tag"], [HOSTILE]) == "category"
    assert axis_scale(spec.space["depth"], [1, 2]) == "linear"
    assert axis_scale(None, [1, 2.5]) == "linear" and axis_scale(None, ["a", 1]) == "category"
    assert categories(spec.space["tag"], [MATHTEXT, "new"]) == [HOSTILE, "boom", MATHTEXT, "new"]
    _, page = read_page(custom["out"])
    params = next(i for i in page.images if i["src"] == "params.png")
    assert "x (log)" in str(params["alt"]) and "tag (category)" in str(params["alt"])


def test_no_test_evaluation_is_explained_and_empty_plots_are_skipped(
    custom: dict[str, Any],
) -> None:
    out = custom["out"]
    _, page = read_page(out)
    text = " ".join(" ".join(page.text).split())
    assert "a custom trial function returns a score, not a model" in text
    sources = assert_images_exist(out, page)
    assert "folds.png" not in sources and not (out / "folds.png").exists()  # stale one gone
    assert "intermediate.png" in sources  # the custom trial reported three steps
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results == status_json(custom["path"], custom["tmp"]) and results["test"] is None


# -- study life cycle: not run, not finished, a second look --------------------------------------


def test_a_study_that_never_ran_gets_a_report_that_says_so(tmp_path: Path) -> None:
    spec = base_spec(tmp_path, name="never-ran")
    path = write_spec(tmp_path, spec)
    out = tmp_path / "deep" / "er" / "out"
    result = cli(["report", path, "--out", out], tmp_path)
    assert result.exit_code == 0, result.stderr  # as `status`: not run yet is no error
    assert "has not run yet" in result.stderr
    assert not db_file(spec).exists()  # reading created no storage
    _, page = read_page(out)
    assert "has not run yet" in " ".join(page.text) and page.images == []
    header, rows = csv_rows(out)
    assert header == ["number", "state", "value", "duration_s", "params.model__n_neighbors"]
    assert rows == []
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results == status_json(path, tmp_path)


def test_a_study_in_progress_has_no_test_score_yet(tmp_path: Path) -> None:
    spec = base_spec(tmp_path, name="half-way", budget={"trials": 4})
    path = write_spec(tmp_path, spec)
    assert cli(["run", path, "--max-new-trials", "2"], tmp_path).exit_code == 0
    out = tmp_path / "out"
    report(path, out, tmp_path)
    _, page = read_page(out)
    text = " ".join(" ".join(page.text).split())
    assert "in progress" in text and "No test evaluation yet: the study is not finished" in text
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results == status_json(path, tmp_path)
    assert results["finished"] is False and results["counts"]["complete"] == 2
    _, rows = csv_rows(out)
    assert [int(r["number"]) for r in rows] == [0, 1]


def test_a_second_look_at_the_test_set_is_shown_loudly(tmp_path: Path) -> None:
    spec = base_spec(tmp_path, name="looked-twice", budget={"trials": 2})
    path = write_spec(tmp_path, spec)
    assert cli(["run", path], tmp_path).exit_code == 0
    out = tmp_path / "out"
    report(path, out, tmp_path)
    assert 'id="second-look"' not in read_page(out)[0]

    assert cli(["run", path, "--allow-second-look"], tmp_path).exit_code == 0
    report(path, out, tmp_path)  # into the same folder: every file replaced
    html, page = read_page(out)
    assert 'id="second-look"' in html
    text = " ".join(" ".join(page.text).split())
    assert "The test set was evaluated 2 times (1 second look)" in text
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["test"]["second_looks"] == 1 and results == status_json(path, tmp_path)


# -- bad input -----------------------------------------------------------------------------------


def test_a_missing_or_invalid_spec_fails_as_status_does(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    broken = write_spec(tmp_path, {**base_spec(tmp_path), "budget": {"trials": 0}}, "bad.json")
    for path, code in ((missing, 66), (broken, 65)):
        status = cli(["status", path], tmp_path)
        made = cli(["report", path, "--out", tmp_path / "out"], tmp_path)
        assert status.exit_code == made.exit_code == code
        assert made.stderr == status.stderr
    assert not (tmp_path / "out").exists()


def test_out_that_is_a_file_is_a_usage_error(tmp_path: Path) -> None:
    path = write_spec(tmp_path, base_spec(tmp_path))
    taken = tmp_path / "taken"
    taken.write_text("mine", encoding="utf-8")
    result = cli(["report", path, "--out", taken], tmp_path)
    assert result.exit_code == 2
    assert "--out" in result.stderr and "is a file" in result.stderr
    assert taken.read_text(encoding="utf-8") == "mine"
    assert cli(["report", path], tmp_path).exit_code == 2  # --out is required


def test_the_python_api_writes_the_same_files(knn: dict[str, Any], tmp_path: Path) -> None:
    spec = tunedag.load_spec(knn["path"])
    files = tunedag.write_report(spec, tmp_path / "api", storage=knn["spec"]["storage"])
    assert files.html.is_file() and files.trials_csv.is_file() and files.results_json.is_file()
    assert [p.name for p in files.plots] == list(PLOT_FILES)
    assert files.result is not None and files.result.counts["failed"] == 1
    assert (files.trials_csv).read_text() == (knn["out"] / "trials.csv").read_text()
    with pytest.raises(NotADirectoryError):
        tunedag.write_report(spec, files.html)


def test_rows_are_sorted_in_the_direction_of_the_study() -> None:
    from tunedag.report.tables import top_trials

    def done(number: int, value: float) -> TrialRecord:
        return TrialRecord(number=number, state=TrialState.COMPLETE, params={}, value=value)

    trials = [done(0, 0.5), done(1, 0.9), done(2, 0.1), done(3, 0.9), done(4, math.nan)]
    pruned = TrialRecord(number=5, state=TrialState.PRUNED, params={}, value=1.0)
    assert [t.number for t in top_trials([*trials, pruned], "maximize")] == [1, 3, 0, 2]
    assert [t.number for t in top_trials(trials, "minimize", limit=2)] == [2, 0]


def test_a_failed_trial_past_the_others_stays_in_view() -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure()
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    ax.scatter([3, 5, 60], [0.93, 0.94, 0.52])
    before = ax.get_ylim()
    mark_on_edge(ax, [500], "failed (no value)")  # k=500 failed: it has no value to plot
    low, high = ax.get_xlim()
    assert low <= 3 and high >= 500 and ax.get_ylim() == before
