"""Every number in a spec has finite bounds, and the storage URL is checked: what validates runs.

Each case is one the outside test of issue 17 found validating and then crashing (exit 70).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

INVALID = 65
BOUNDS = "low: 1.0e-3, high: 1.0e+3, log: true"

CASES = {
    "trial-timeout-inf": (
        ("max_failed: 1}", "max_failed: 1, trial_timeout: .inf}"),
        "budget.trial_timeout: Input should be a finite number",
    ),
    "budget-time-1e300": (
        ("max_failed: 1}", "max_failed: 1, time: 1e300}"),
        "budget.time: Input should be less than or equal to 31622400",
    ),
    "seed-negative": (("seed: 1", "seed: -1"), "seed: Input should be greater than or equal to 0"),
    "seed-2**32": (("seed: 1", "seed: 4294967296"), "seed: Input should be less than or equal"),
    "low-minus-inf": (
        (BOUNDS, "low: -.inf, high: 1.0"),
        "space.model__C.low: Input should be a finite",
    ),
    "bounds-1e308": (
        (BOUNDS, "low: -1e308, high: 1e308"),
        "space.model__C.high: the range from low=-1e+308 to high=1e+308 is too wide",
    ),
    "int-bound-2**60": (
        ("type: int, low: 2, high: 4", "type: int, low: 2, high: 1152921504606846976"),
        "space.model__degree.high: Input should be less than or equal to 9007199254740992",
    ),
    "tiny-step": (
        (BOUNDS, "low: 0.0, high: 1.0, step: 1.0e-300"),
        "cuts [0.0, 1.0] into more than 2**53 steps",
    ),
    "storage-sqlite-empty": ((None, 'storage: "sqlite:///"'), "storage: unsupported storage URL"),
    "storage-a-folder": ((None, 'storage: "sqlite:///."'), "names a folder"),
    "storage-under-a-file": (
        (None, 'storage: "sqlite:///spec.yaml/x.sqlite"'),
        "is a file, not a folder",
    ),
    "grid-points-1e9": (
        (BOUNDS, f"{BOUNDS}, grid_points: 1e9"),
        "space.model__C.grid_points: Input should be less than or equal to 100000",
    ),
    "workers-1e6": (
        (None, "execution: {workers: 1000000}"),
        "execution.workers: Input should be less",
    ),
    "values-repeated": (
        (BOUNDS, "values: [0.1, 1.0, 0.1]"),
        "space.model__C.values[2]: `values` must be distinct, but 0.1 repeats",
    ),
    "when-no-value": (
        ("when: {model__kernel: poly}", "when: {model__kernel: []}"),
        "`when` lists no value of 'model__kernel' ([]): this would never be active",
    ),
    "sampler-option-inf": (
        ("name: random}", "name: skopt-gp, options: {xi: .inf}}"),
        "sampler.options.xi: Input should be a finite number",
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_a_number_out_of_bounds_is_refused_at_validate(
    case: str,
    base_spec_yaml: str,
    spec_file: Callable[..., Path],
    run_cli: Callable[..., Result],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # storage is relative to the current directory
    (old, new), message = CASES[case]
    text = base_spec_yaml + new + "\n" if old is None else base_spec_yaml.replace(old, new)
    assert text != base_spec_yaml
    result = run_cli("validate", spec_file(text))
    assert result.exit_code == INVALID, result.stderr
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_a_grid_too_large_to_enumerate_is_refused_without_building_it(
    base_spec_yaml: str, spec_file: Callable[..., Path], run_cli: Callable[..., Result]
) -> None:
    text = (
        base_spec_yaml.replace(BOUNDS, f"{BOUNDS}, grid_points: 90000")
        .replace("type: int, low: 2, high: 4,", "type: int, low: 2, high: 400,")
        .replace("name: random", "name: grid")
    )
    result = run_cli("validate", spec_file(text))
    assert result.exit_code == INVALID
    assert "the grid has up to 71,820,000 points; grid search takes at most 1,000,000" in (
        result.stderr
    )
