"""Fuzzing `tunedag validate` with mutations of the shipped specs (hypothesis).

Whatever the mutation (characters cut, hostile text or values spliced in, lines repeated,
bytes that are not UTF-8), validate ends with a documented exit code, never 70 (a bug),
never a traceback, within a bounded time and memory. The default run tries a few dozen
cases; `pytest -m slow` tries many more, and replaces every scalar of every YAML spec in turn
with lists, mappings and object descriptions.
"""

from __future__ import annotations

import re
import resource
import shutil
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import QUIET_ENV, REPO
from tunedag.cli import main

DOCUMENTED = {0, 65, 66, 74, 75, 78}
SPECS = sorted((REPO / "specs").glob("*.yaml")) + sorted((REPO / "specs").glob("*.toml"))
HOSTILE = [
    ".inf",
    "-.inf",
    ".nan",
    "-1",
    "1e400",
    "9" * 30,
    "0x" + "f" * 40,
    "1e-400",
    "~",
    "null",
    "[]",
    "{}",
    "[[[[[[[[]]]]]]]]",
    "&a [1, 2]",
    "*a",
    "*undefined",
    "<<: {a: 1}",
    "!!omap [a: 1]",
    "!!set {a}",
    "!!binary aGk=",
    "!!python/object/apply:os.system [id]",
    "!custom x",
    "!!int x",
    "!!float y",
    "'unterminated",
    '"\\x00"',
    "|\n  block",
    ">-\n  folded",
    "? complex",
    "- item",
    "key: value: again",
    "%YAML 1.2",
    "---",
    "...",
    "\t",
    "\x00",
    "\x1b[2J",
    "\u202e",
    "\ufeff",
    "é",
    "😀",
    '=HYPERLINK("x")',
    "sqlite:///",
    "sqlite:////proc",
    "csv:/proc/self/environ",
    "csv:/dev/zero",
    "sklearn.base.BaseEstimator",
    "os.system",
    "sklearn._config",
    "1" * 5000,
]
BOUNDED_S = 20.0  # one validate, even on a loaded machine


def _mutations() -> st.SearchStrategy[list[tuple[str, int, int, str]]]:
    text = st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20
    ) | st.sampled_from(HOSTILE)
    one = st.tuples(
        st.sampled_from(["insert", "replace", "delete", "repeat-line", "swap-lines"]),
        st.integers(min_value=0, max_value=10**6),
        st.integers(min_value=0, max_value=60),
        text,
    )
    return st.lists(one, min_size=1, max_size=4)


def mutate(source: str, mutations: list[tuple[str, int, int, str]]) -> str:
    for kind, at, width, piece in mutations:
        at %= max(len(source), 1)
        lines = source.split("\n")
        line = at % max(len(lines), 1)
        if kind == "insert":
            source = source[:at] + piece + source[at:]
        elif kind == "replace":
            source = source[:at] + piece + source[at + width :]
        elif kind == "delete":
            source = source[:at] + source[at + width :]
        elif kind == "repeat-line":
            source = "\n".join([*lines[: line + 1], *lines[line:]])
        else:
            other = (line + width) % max(len(lines), 1)
            lines[line], lines[other] = lines[other], lines[line]
            source = "\n".join(lines)
    return source


class Tally:
    cases = 0
    codes: ClassVar[dict[int, int]] = {}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where mutated specs are written, with the shipped specs' data beside them."""
    root = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(REPO / "specs" / "data", root / "data")
    return root


def check_one(folder: Path, spec: Path, mutations: list[Any], raw: bytes | None) -> None:
    mutated = mutate(spec.read_text(encoding="utf-8"), mutations)
    path = folder / f"fuzz{spec.suffix}"
    data = mutated.encode("utf-8", "surrogatepass") if raw is None else raw + mutated.encode()
    path.write_bytes(data)
    started = time.monotonic()
    result = CliRunner(env=QUIET_ENV).invoke(main, ["validate", str(path)])
    elapsed = time.monotonic() - started
    Tally.cases += 1
    Tally.codes[result.exit_code] = Tally.codes.get(result.exit_code, 0) + 1
    shown = f"{mutations!r}\n{result.output[-2000:]}"
    assert result.exit_code in DOCUMENTED, shown
    assert result.exception is None or isinstance(result.exception, SystemExit), shown
    assert "Traceback" not in result.output, shown
    assert elapsed < BOUNDED_S, shown


def fuzz(folder: Path, max_examples: int) -> None:
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(
        spec=st.sampled_from(SPECS),
        mutations=_mutations(),
        raw=st.none() | st.binary(min_size=1, max_size=4).filter(_not_utf8),
    )
    def case(spec: Path, mutations: list[Any], raw: bytes | None) -> None:
        check_one(folder, spec, mutations, raw)

    case()
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert grown_mb < 1024, f"validate's peak memory grew by {grown_mb:.0f} MB"
    print(f"\nfuzzed {Tally.cases} cases, exit codes {dict(sorted(Tally.codes.items()))}")


def _not_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def test_mutated_shipped_specs_end_in_a_documented_exit_code(folder: Path) -> None:
    fuzz(folder, max_examples=20)


@pytest.mark.slow
def test_many_mutated_shipped_specs_end_in_a_documented_exit_code(folder: Path) -> None:
    fuzz(folder, max_examples=1500)


#: Values that stand for objects or change a value's shape, spliced over every scalar.
STRUCTURED = [
    "[]",
    "{}",
    "[[1]]",
    "{a: 1}",
    "{estimator: 1}",
    "{estimator: sklearn.svm.SVC, params: 1}",
    "{function: 1}",
    "{function: numpy.log}",
    "{dtype_include: 1}",
    "{pattern: '('}",
]
SCALAR = re.compile(r"(?<=: )[^\n{}\[\],#]+|(?<=- )[^\n{}\[\],#:]+")


@pytest.mark.slow
def test_every_scalar_of_the_shipped_specs_replaced_by_a_structure(folder: Path) -> None:
    """Systematic where the fuzzing is random: each scalar value of each YAML spec in turn
    becomes a list, a mapping or an object description."""
    for spec in SPECS:
        if spec.suffix != ".yaml":
            continue
        for found in SCALAR.finditer(spec.read_text(encoding="utf-8")):
            width = found.end() - found.start()
            for value in STRUCTURED:
                check_one(folder, spec, [("replace", found.start(), width, value)], None)
