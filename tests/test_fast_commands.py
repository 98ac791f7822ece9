"""Commands that do not fit models start fast: they import no plotting library, and no
scikit-learn unless they resolve estimators; ``status`` reads a large study in a fraction of
a second of CPU."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import TUNEDAG, base_spec, cli_env, write_spec

from tunedag.storage import TrialState, open_storage

HEAVY = ("sklearn", "scipy", "pandas", "matplotlib", "skops", "dask", "distributed", "jinja2")

#: runs one command in a fresh interpreter, then prints the heavy modules it imported
PROBE = """\
import json, sys
from tunedag.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print(json.dumps(heavy), file=sys.__stderr__)
"""


def imported_by(args: list[str], cwd: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
        cwd=cwd,
        env=cli_env(cwd),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    heavy: list[str] = json.loads(done.stderr.strip().splitlines()[-1])
    return heavy


def test_importing_the_cli_loads_nothing_heavy(tmp_path: Path) -> None:
    code = (
        "import sys, tunedag, tunedag.cli; "
        f"print(sorted(m for m in {(*HEAVY, 'numpy', 'pydantic')!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("command", "allowed"),
    [
        (["status", "{spec}", "--json"], set()),
        (["status", "{spec}"], set()),
        (["schema"], {"scipy"}),
        (["plugins", "--json"], {"scipy"}),
        (["validate", "{spec}"], {"sklearn", "scipy", "pandas"}),
        (["plan", "{spec}"], {"sklearn", "scipy", "pandas"}),
    ],
    ids=["status-json", "status", "schema", "plugins", "validate", "plan"],
)
def test_a_command_imports_only_what_it_needs(
    tmp_path: Path, command: list[str], allowed: set[str]
) -> None:
    spec = write_spec(tmp_path, base_spec(tmp_path))
    args = [part.format(spec=spec) for part in command]
    assert set(imported_by(args, tmp_path)) <= allowed


def test_status_of_a_thousand_trial_study_takes_a_fraction_of_a_second_of_cpu(
    tmp_path: Path,
) -> None:
    spec = base_spec(tmp_path, budget={"trials": 1000})
    path = write_spec(tmp_path, spec)
    with open_storage(spec["storage"]) as store:
        store.create_study("study", {"space": "x"}, "{}")
        for k in range(1000):
            number = store.create_trial("study", {"model__n_neighbors": 1 + k % 30}).number
            folds = [0.9 + (k % 7) / 100, 0.91, 0.92]
            store.finish_trial(
                "study",
                number,
                TrialState.COMPLETE,
                value=sum(folds) / 3,
                fold_values=folds,
                intermediate=dict(enumerate(folds)),
                duration_s=0.1,
            )
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [TUNEDAG, "status", str(path), "--json"],
        cwd=tmp_path,
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert json.loads(done.stdout)["counts"]["complete"] == 1000
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert cpu < 1.0, f"status used {cpu:.2f} s of CPU on 1,000 trials (it takes about 0.3 s)"
