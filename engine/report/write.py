"""``write_report``: read a study from storage and write its report files into a folder."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from tunedag.report.data import collect
from tunedag.report.html import render_html
from tunedag.report.plots import draw_plots
from tunedag.report.tables import write_trials_csv
from tunedag.result import StudyResult, status_payload
from tunedag.spec.models import Spec

HTML = "report.html"
CSV = "trials.csv"
JSON = "results.json"


@dataclass
class ReportFiles:
    """What ``write_report`` wrote, and the study it read (None when it has not run)."""

    directory: Path
    html: Path
    trials_csv: Path
    results_json: Path
    plots: list[Path] = field(default_factory=list)
    result: StudyResult | None = None


def write_report(
    spec: Spec, out: str | os.PathLike[str], *, storage: str | None = None
) -> ReportFiles:
    """Write ``report.html`` with its PNG plots, ``trials.csv`` and ``results.json`` to ``out``.

    Reads the storage that ``tunedag status`` reads (``storage`` overrides the spec's) and
    never writes to it, runs nothing and never touches the test set. ``out`` is created if
    missing; report files already there are replaced. A study that has not run yet gets a
    report that says so.
    """
    directory = Path(out)
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(f"the report folder {directory} is a file")
    directory.mkdir(parents=True, exist_ok=True)
    data = collect(spec, storage)
    files = ReportFiles(
        directory=directory,
        html=directory / HTML,
        trials_csv=directory / CSV,
        results_json=directory / JSON,
        result=data.result,
    )
    payload = status_payload(spec, data.result)
    _replace(files.results_json, json.dumps(payload, indent=2) + "\n")
    write_trials_csv(files.trials_csv, spec, data.trials)
    plots = draw_plots(data, directory)
    files.plots = [directory / plot.file for plot in plots]
    _replace(files.html, render_html(data, plots))
    return files


def _replace(path: Path, text: str) -> None:
    """Write through a temporary file, so a reader never sees half a report."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
