"""An installed plugin that fails to import or clashes fails alone: a warning, and exit 78
only for a spec that names it. The plugins here are real installed distributions (a
`.dist-info` folder with an `entry_points.txt` on sys.path), found through entry points."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tunedag import plugin_loading
from tunedag.cli import main

AUTOLOAD = {
    "TUNEDAG_DISABLE_PLUGIN_AUTOLOAD": "",
    "TUNEDAG_DISABLED_PLUGINS": "",
    "TUNEDAG_DEBUG": "",
}

BROKEN = "import scipy_that_is_not_installed  # noqa\n"
CLASHING = """\
from tunedag import Sampler, hookimpl


class Random(Sampler):
    name = "random"

    def ask(self, history, n):
        return []


@hookimpl
def register_samplers(register):
    register(Random)
"""


def install(root: Path, package: str, entry: str, source: str) -> None:
    """A real installed distribution: its module and its metadata with one entry point."""
    (root / f"{package}_mod.py").write_text(source, encoding="utf-8")
    info = root / f"{package}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {package}\nVersion: 1.0\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        f"[tunedag]\n{entry} = {package}_mod\n", encoding="utf-8"
    )


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on sys.path to install distributions in."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setattr(plugin_loading, "_warned", set())
    return root


@pytest.fixture
def installed(site: Path) -> Path:
    install(site, "brokenplug", "sobol", BROKEN)
    install(site, "clashplug", "clash", CLASHING)
    return site


def cli(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    """One command, as its own process would run it: each failure is told once a process."""
    plugin_loading._warned.clear()
    runner = CliRunner(env={**AUTOLOAD, **(env or {})})
    return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_a_plugin_that_fails_to_import_is_a_warning_and_commands_go_on(
    installed: Path, base_spec_yaml: str, spec_file: Callable[..., Path]
) -> None:
    grid = spec_file(
        base_spec_yaml.replace("name: random}", "name: grid}")
        .replace("low: 1.0e-3, high: 1.0e+3, log: true", "values: [0.1, 1.0]")
        .replace("low: 2, high: 4,", "values: [2, 3],")
    )
    for args in (("plugins",), ("schema",), ("validate", grid)):
        result = cli(*args)
        assert result.exit_code == 0, result.stderr
        assert "Traceback" not in result.stderr
        assert (
            "plugin 'sobol' (entry point 'sobol' in group 'tunedag', package brokenplug 1.0) "
            "failed to load: ModuleNotFoundError: No module named 'scipy_that_is_not_installed'"
        ) in result.stderr
        assert "TUNEDAG_DISABLED_PLUGINS=sobol" in result.stderr


def test_a_spec_naming_what_a_failed_plugin_would_provide_exits_78_with_the_reason(
    installed: Path, base_spec_yaml: str, spec_file: Callable[..., Path]
) -> None:
    result = cli("validate", spec_file(base_spec_yaml.replace("name: random}", "name: sobol}")))
    assert result.exit_code == 78
    assert "unknown sampler 'sobol'" in result.stderr
    assert "plugin 'sobol' (brokenplug 1.0) failed to load: ModuleNotFoundError" in result.stderr


def test_a_clashing_name_is_refused_only_for_a_spec_that_names_it(
    installed: Path, base_spec_yaml: str, spec_file: Callable[..., Path]
) -> None:
    result = cli("validate", spec_file(base_spec_yaml))  # sampler: random, which clashes
    assert result.exit_code == 78, result.stderr
    assert (
        "sampler 'random' is registered twice: by plugin 'random' (tunedag" in result.stderr
        and "by plugin 'clash' (clashplug 1.0), so neither is used" in result.stderr
    )
    assert "warning: plugin 'clash'" in result.stderr and "TUNEDAG_DISABLED_PLUGINS=clash" in (
        result.stderr
    )
    other = spec_file(base_spec_yaml.replace("name: random}", "name: skopt-gp}"), "other.yaml")
    assert cli("validate", other).exit_code == 0
    assert (
        cli(
            "validate", spec_file(base_spec_yaml), env={"TUNEDAG_DISABLED_PLUGINS": "clash"}
        ).exit_code
        == 0
    )


def test_disabling_a_broken_plugin_silences_it(
    installed: Path, base_spec_yaml: str, spec_file: Callable[..., Path]
) -> None:
    result = cli(
        "validate", spec_file(base_spec_yaml), env={"TUNEDAG_DISABLED_PLUGINS": "sobol,clash"}
    )
    assert result.exit_code == 0 and "warning" not in result.stderr


def test_debug_prints_the_plugins_traceback(
    installed: Path, base_spec_yaml: str, spec_file: Callable[..., Path]
) -> None:
    result = cli(
        "--debug", "validate", spec_file(base_spec_yaml.replace("name: random}", "name: sobol}"))
    )
    assert result.exit_code == 78
    assert "Traceback (most recent call last)" in result.stderr
    assert "import scipy_that_is_not_installed" in result.stderr


def test_the_plugins_command_lists_the_failed_plugins_with_their_reason(installed: Path) -> None:
    text = cli("plugins")
    assert text.exit_code == 0
    failed = [line for line in text.stdout.splitlines() if line.startswith("failed")]
    assert any("sobol" in line and "brokenplug 1.0" in line for line in failed), text.stdout
    assert any("clash" in line and "clashes" in line for line in failed), text.stdout

    rows = json.loads(cli("plugins", "--json").stdout)
    by_name = {row["name"]: row for row in rows if row["kind"] == "failed"}
    assert by_name["sobol"]["distribution"] == "brokenplug"
    assert "ModuleNotFoundError" in by_name["sobol"]["reason"]
    assert by_name["clash"]["reason"].startswith("clashes")
    samplers = {row["name"] for row in rows if row["kind"] == "sampler"}
    assert "grid" in samplers
    assert "random" not in samplers  # clashed: refused to whichever spec names it


def test_an_entry_point_named_as_a_built_in_is_a_warning_not_silence(
    site: Path, base_spec_yaml: str, spec_file: Callable[..., Path]
) -> None:
    install(site, "shadowplug", "random", CLASHING.replace('"random"', '"shadowed"'))
    result = cli("validate", spec_file(base_spec_yaml))  # the built-in random still serves
    assert result.exit_code == 0, result.stderr
    assert (
        "plugin 'random' (entry point 'random' in group 'tunedag', package shadowplug 1.0) is "
        "not loaded: its entry-point name 'random' is taken by 'tunedag.plugins.random_sampler'"
    ) in result.stderr
    assert "TUNEDAG_DISABLED_PLUGINS" not in result.stderr  # that would block the built-in
    listed = cli("plugins")
    (line,) = [line for line in listed.stdout.splitlines() if line.startswith("failed")]
    assert "shadowplug" in line and "TUNEDAG_DISABLED_PLUGINS" not in line


def test_a_plugin_calling_sys_exit_in_its_register_hook_fails_alone(
    site: Path, base_spec_yaml: str, spec_file: Callable[..., Path]
) -> None:
    exiting = (
        "import sys\nfrom tunedag import hookimpl\n\n"
        "@hookimpl\ndef register_samplers(register):\n    sys.exit(0)\n"
    )
    install(site, "exitplug", "exiting", exiting)
    result = cli("validate", spec_file(base_spec_yaml))
    assert result.exit_code == 0, result.stderr
    assert "plugin 'exiting'" in result.stderr and "SystemExit: 0" in result.stderr
