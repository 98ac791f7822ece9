"""`tunedag validate` over the example specs, `tunedag schema`, usage errors, and a few runs of
the real console script in a subprocess (exit codes and stderr as an orchestrator sees them)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

REPO = Path(__file__).resolve().parents[1]
SPECS = sorted(
    path
    for pattern in ("*.yaml", "*.yml", "*.json", "*.toml")
    for path in (REPO / "specs").glob(pattern)
)
SCHEMA = REPO / "tunedag.schema.json"
MODELINE = "# yaml-language-server: $schema=../tunedag.schema.json"
REFRESH = "TUNEDAG_DISABLE_PLUGIN_AUTOLOAD=1 tunedag schema > tunedag.schema.json"


def test_there_are_example_specs() -> None:
    assert REPO / "specs" / "quickstart.yaml" in SPECS


@pytest.mark.parametrize("spec", SPECS, ids=[path.name for path in SPECS])
def test_every_example_spec_validates(spec: Path, run_cli: Callable[..., Result]) -> None:
    result = run_cli("validate", spec)
    assert result.exit_code == 0, result.stderr
    assert f"{spec}: ok" in result.stderr


@pytest.mark.parametrize(
    "spec",
    [path for path in SPECS if path.suffix in (".yaml", ".yml")],
    ids=lambda path: path.name,
)
def test_yaml_specs_name_the_schema_on_their_first_line(spec: Path) -> None:
    first = spec.read_text(encoding="utf-8").splitlines()[0]
    assert first == MODELINE, f"{spec.name}: make its first line `{MODELINE}`"


def test_committed_schema_is_up_to_date(run_cli: Callable[..., Result]) -> None:
    result = run_cli("schema")  # the run_cli fixture sets TUNEDAG_DISABLE_PLUGIN_AUTOLOAD=1
    assert result.exit_code == 0, result.stderr
    fresh = json.loads(result.stdout)
    committed = json.loads(SCHEMA.read_text(encoding="utf-8")) if SCHEMA.exists() else None
    assert committed == fresh, f"{SCHEMA.name} is out of date; refresh it with: {REFRESH}"


def test_schema_lists_the_built_in_plugins() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    samplers = {v["properties"]["name"]["const"] for v in schema["properties"]["sampler"]["oneOf"]}
    pruners = {v["properties"]["name"]["const"] for v in schema["properties"]["pruner"]["oneOf"]}
    assert {"random", "grid"} <= samplers and {"none", "median"} <= pruners
    assert "local" in schema["$defs"]["ExecutionSpec"]["properties"]["executor"]["enum"]
    assert schema["additionalProperties"] is False


# ------------------------------------------------------------------------- usage errors


@pytest.mark.parametrize(
    "args",
    [
        ("run", "{spec}", "--workers", "0"),
        ("run", "{spec}", "--workers", "two"),
        ("run", "{spec}", "--workers", "10000"),
        ("run", "{spec}", "--max-new-trials", "-1"),
        ("run", "{spec}", "--no-such-option"),
        ("plan", "{spec}", "--format", "svg"),
        ("validate",),
        ("validate", "{spec}", "extra"),
        ("valdiate", "{spec}"),
        ("validate", "{dir}"),
    ],
    ids=lambda args: " ".join(args),
)
def test_usage_errors_exit_2(
    args: tuple[str, ...],
    base_spec_yaml: str,
    spec_file: Callable[..., Path],
    run_cli: Callable[..., Result],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = spec_file(base_spec_yaml)
    result = run_cli(*(arg.format(spec=spec, dir=tmp_path) for arg in args))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / ".tunedag").exists()  # nothing ran


# -------------------------------------------------------------------- real subprocesses


@pytest.fixture(scope="module")
def processes(
    base_spec_yaml: str,
    start_cli: Callable[..., subprocess.Popen[str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, tuple[int, str, str, Path]]:
    """A few `tunedag` commands, started together (each pays ~3 s of imports) and awaited."""
    root = tmp_path_factory.mktemp("subprocess")
    specs = {
        "ok": base_spec_yaml,
        "misspelt-sampler": base_spec_yaml.replace("name: random}", "name: randon}"),
        "python-tag": base_spec_yaml.replace(
            "seed: 1", 'seed: !!python/object/apply:os.system ["touch PWNED"]'
        ),
        "usage": base_spec_yaml,
    }
    commands = {
        "ok": ("validate", "{spec}"),
        "misspelt-sampler": ("validate", "{spec}"),
        "python-tag": ("validate", "{spec}"),
        "usage": ("run", "{spec}", "--workers", "0"),
        "missing-spec": ("validate", "{dir}/nope.yaml"),
    }
    started = {}
    for name, command in commands.items():
        work = root / name
        work.mkdir()
        spec = work / "spec.yaml"
        spec.write_text(specs.get(name, ""), encoding="utf-8")
        if name == "missing-spec":
            spec.unlink()
        args = [arg.format(spec=spec, dir=work) for arg in command]
        started[name] = (start_cli(*args, cwd=work), work)
    results = {}
    for name, (process, work) in started.items():
        stdout, stderr = process.communicate(timeout=120)
        results[name] = (process.returncode, stdout, stderr, work)
    return results


def test_subprocess_valid_spec(processes: dict[str, tuple[int, str, str, Path]]) -> None:
    code, stdout, stderr, work = processes["ok"]
    assert code == 0, stderr
    assert stdout == "" and f"{work / 'spec.yaml'}: ok" in stderr


def test_subprocess_unknown_sampler_exits_78(
    processes: dict[str, tuple[int, str, str, Path]],
) -> None:
    code, _, stderr, work = processes["misspelt-sampler"]
    assert code == 78
    assert "Traceback" not in stderr
    assert f"{work / 'spec.yaml'}:16:11: sampler.name: unknown sampler 'randon'" in stderr
    assert "did you mean 'random'?" in stderr


def test_subprocess_python_tag_runs_nothing(
    processes: dict[str, tuple[int, str, str, Path]],
) -> None:
    code, _, stderr, work = processes["python-tag"]
    assert code == 65
    assert "Traceback" not in stderr
    assert f"{work / 'spec.yaml'}:2:1: seed: " in stderr and "not allowed" in stderr
    assert not (work / "PWNED").exists()


def test_subprocess_missing_spec_exits_66(
    processes: dict[str, tuple[int, str, str, Path]],
) -> None:
    code, _, stderr, _ = processes["missing-spec"]
    assert code == 66
    assert "Traceback" not in stderr and "nope.yaml" in stderr


def test_subprocess_bad_option_exits_2(processes: dict[str, tuple[int, str, str, Path]]) -> None:
    code, _, stderr, work = processes["usage"]
    assert code == 2
    assert "Traceback" not in stderr and "--workers" in stderr
    assert not (work / ".tunedag").exists()
