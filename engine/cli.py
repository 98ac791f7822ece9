"""The `tunedag` command: human output on stderr, machine output on stdout, stable exit codes.

With ``--json`` stdout carries JSON lines only (``tunedag.stdout``), and a failed command
ends it with an ``error`` event (``tunedag.envelope``). Each command imports what it needs
when it runs, so ``status``, ``plan``, ``schema`` and ``plugins`` start fast, and SIGINT or
SIGTERM arriving while a command imports or parses its spec exits 130 or 143 with one line.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, TypeVar

import click

from tunedag.envelope import STOPPED_CODES, error_event, stopped_event
from tunedag.errors import (
    OutputError,
    StorageError,
    TunedagError,
    os_exit_code,
    output_path_error,
)
from tunedag.plugin_loading import debugging
from tunedag.stdout import MachineOutput
from tunedag.stopsignals import STOP_SIGNALS, deferred_while_blocked

if TYPE_CHECKING:
    from tunedag.looks import Look
    from tunedag.result import StudyResult
    from tunedag.spec.models import Spec

F = TypeVar("F", bound=Callable[..., Any])

DEBUG_ENV = "TUNEDAG_DEBUG"


class Interrupted(BaseException):
    """SIGINT or SIGTERM before a run installs its own handlers (imports, spec parsing).

    A BaseException, so no ``except Exception`` on the way turns it into another error.
    """

    def __init__(self, signal_number: int) -> None:
        self.exit_code = 128 + signal_number
        name = signal.Signals(signal_number).name
        super().__init__(f"interrupted by {name} (exit {self.exit_code})")


def _handled(function: F) -> F:
    """Our errors print one line per problem and exit with their code; bugs keep a traceback.

    With ``--json`` the command's stdout is claimed for JSON lines first, and any error
    ends it with the ``error`` event.
    """

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        machine = MachineOutput() if _wants_json(kwargs) else None
        click.get_current_context().meta["tunedag.stdout"] = machine
        if machine is not None:
            machine.claim()
        try:
            return function(*args, **kwargs)
        except TunedagError as error:
            if debugging():
                _tell_traceback(error)
            _tell(f"error: {error}" if "\n" not in str(error) else str(error))
            full = debugging() or error.exit_code == 70
            _fail(machine, error, error.exit_code, with_traceback=full)
        except (KeyboardInterrupt, Interrupted) as error:
            code = error.exit_code if isinstance(error, Interrupted) else 130
            _tell(f"interrupted (exit {code})")
            _fail(machine, error, code)
        except (click.exceptions.Exit, click.ClickException):
            raise
        except SystemExit as error:  # tunedag's commands exit by Exit; this is user code's
            _bug(machine, error)
        except OSError as error:
            system_code = os_exit_code(error)
            if system_code is None:
                _bug(machine, error)
            # the machine's condition (a full disk, a closed pipe), not tunedag's mistake
            if debugging():
                _tell_traceback(error)
            where = f": {error.filename}" if error.filename else ""
            _tell(f"error: {error.strerror or error}{where}")
            _fail(machine, error, system_code)
        except Exception as error:
            _bug(machine, error)
        finally:
            if machine is not None:
                machine.release()

    wrapper.__name__ = function.__name__
    wrapper.__doc__ = function.__doc__
    return wrapper  # type: ignore[return-value]


def _wants_json(kwargs: dict[str, Any]) -> bool:
    return bool(kwargs.get("as_json")) or kwargs.get("fmt") == "json"


def _bug(machine: MachineOutput | None, error: BaseException) -> NoReturn:
    _tell_traceback(error)
    _tell(
        "error: an unexpected error in tunedag or a plugin (exit 70); "
        "please report it with the traceback above"
    )
    _fail(machine, error, 70, with_traceback=True)


def _tell(message: str) -> None:
    """A line on stderr for the person watching. When stderr cannot take it (a full disk
    under the log) the line is lost, not the exit code: the JSON error event still ends
    stdout."""
    with contextlib.suppress(OSError, ValueError):
        click.echo(message, err=True)


def _tell_traceback(error: BaseException) -> None:
    with contextlib.suppress(OSError, ValueError):
        traceback.print_exception(error)


def _fail(
    machine: MachineOutput | None,
    error: BaseException,
    exit_code: int,
    *,
    with_traceback: bool = False,
) -> NoReturn:
    """End the JSON streams (stdout with --json, the --events-file) with the error, and
    ``study_stopped`` for a stopped run; exit."""
    meta = click.get_current_context().meta
    study = meta.get("tunedag.study")
    sinks = [machine.event] if machine is not None else []
    sinks += [meta["tunedag.events_file"]] if "tunedag.events_file" in meta else []
    for sink in sinks:
        with contextlib.suppress(OutputError):  # the stream itself may be what failed
            sink(error_event(error, exit_code, study=study, with_traceback=with_traceback))
            if exit_code in STOPPED_CODES and meta.get("tunedag.run"):
                sink(stopped_event(error, exit_code, study=study))
    sys.exit(exit_code)


def _load_spec(path: Path) -> Spec:
    """Load and validate the spec; its study names the events of a failing command."""
    from tunedag.spec.validate import load_spec

    spec = load_spec(path)
    click.get_current_context().meta["tunedag.study"] = spec.name
    return spec


def _machine() -> MachineOutput:
    """This command's JSON stdout (claimed by ``_handled`` when --json was given)."""
    machine = click.get_current_context().meta.get("tunedag.stdout")
    return machine if machine is not None else MachineOutput()


@contextlib.contextmanager
def _stop_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise ``Interrupted`` until a run installs its own handlers."""
    if not _in_main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if not deferred_while_blocked(signum):
            raise Interrupted(signum)

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


class TunedagGroup(click.Group):
    """The command group; its ``main`` installs the signal handlers before anything runs.

    It also gives Click's own usage errors (exit 2) the ``error`` event when the command
    line asked for ``--json``.
    """

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        with _stop_signals():
            argv = list(sys.argv[1:] if args is None else args)
            try:
                done = super().main(argv, prog_name, complete_var, False, **extra)
                if not standalone_mode:
                    return done
                sys.exit(done if isinstance(done, int) else 0)
            except click.ClickException as error:
                if not standalone_mode:
                    raise
                with contextlib.suppress(OSError, ValueError):  # stderr may be full or closed
                    error.show()
                _usage_envelope(argv, error)
                sys.exit(error.exit_code)
            except (click.exceptions.Abort, Interrupted) as error:
                if not standalone_mode:
                    raise
                code = error.exit_code if isinstance(error, Interrupted) else 130
                _tell(f"interrupted (exit {code})")
                sys.exit(code)
            except click.exceptions.Exit as exit_:
                if not standalone_mode:
                    raise
                sys.exit(exit_.exit_code)
            finally:
                if sys.stdout is not None:  # None when the caller closed fd 1
                    sys.stdout.flush()


def _usage_envelope(argv: list[str], error: click.ClickException) -> None:
    joined = " ".join(argv)
    if "--json" not in argv and "--format json" not in joined and "--format=json" not in argv:
        return
    machine = MachineOutput()
    machine.event(
        {
            "event": "error",
            "study": None,
            "ts": round(time.time(), 6),
            "exit_code": error.exit_code,
            "kind": "UsageError",
            "message": error.format_message(),
            "file": None,
            "line": None,
            "column": None,
            "field": None,
        }
    )


SPEC = click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))


def _storage_url(_ctx: click.Context, _param: click.Parameter, url: str | None) -> str | None:
    """A ``--storage`` URL of a form tunedag opens; the file itself is checked on opening."""
    from tunedag.storage import parse_url

    if url is not None:
        try:
            parse_url(url, Path.cwd())
        except StorageError as error:
            raise click.BadParameter(str(error)) from error
    return url


STORAGE = click.option(
    "--storage",
    callback=_storage_url,
    help="storage URL, overriding the spec (sqlite:///PATH or postgresql://...)",
)
JSON = click.option(
    "--json", "as_json", is_flag=True, help="machine output on stdout (JSON lines); errors too"
)


@click.group(cls=TunedagGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tunedag")
@click.option("--debug", is_flag=True, help="print full tracebacks (also TUNEDAG_DEBUG=1)")
def main(debug: bool) -> None:
    """Declarative hyperparameter tuning: validate, plan and run a study from one spec file."""
    if debug:
        os.environ[DEBUG_ENV] = "1"  # worker processes inherit it


@main.command()
@SPEC
@click.option(
    "--dry-run",
    is_flag=True,
    help="also build sampled configurations and fit the pipeline on a few development rows",
)
@JSON
@_handled
def validate(spec: Path, dry_run: bool, as_json: bool) -> None:
    """Check the spec, its estimators, plugins and data paths; --dry-run also fits a sample."""
    loaded = _load_spec(spec)
    if dry_run:
        from tunedag.dryrun import dry_run_spec

        click.echo(str(dry_run_spec(loaded)), err=True)
    count = len(loaded.space)
    plural = "" if count == 1 else "s"
    click.echo(f"{spec}: ok (study {loaded.name!r}, {count} parameter{plural})", err=True)
    if as_json:
        _machine().event(
            {
                "event": "validated",
                "study": loaded.name,
                "ts": round(time.time(), 6),
                "file": str(spec),
                "parameters": count,
                "dry_run": dry_run,
            }
        )


@main.command()
@SPEC
@click.option("--format", "fmt", type=click.Choice(["text", "dot", "json"]), default="text")
@JSON
@_handled
def plan(spec: Path, fmt: str, as_json: bool) -> None:
    """Print the DAG of nodes the study will run (--json is --format json)."""
    from tunedag.dag import build_dag, render_dot, render_json, render_text

    graph = build_dag(_load_spec(spec))
    if as_json or fmt == "json":
        _machine().text(render_json(graph))
        return
    click.echo({"text": render_text, "dot": render_dot}[fmt](graph))


@main.command()
@SPEC
@STORAGE
@click.option("--workers", type=click.IntRange(min=1), help="parallel trials")
@click.option("--json", "as_json", is_flag=True, help="events on stdout, one JSON object a line")
@click.option(
    "--events-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="append JSON-line events to this file",
)
@click.option(
    "--max-new-trials", type=click.IntRange(min=0), help="run at most N new trials in this call"
)
@click.option("--fresh", is_flag=True, help="keep the stored study aside and start a new one")
@click.option(
    "--allow-second-look",
    is_flag=True,
    help="score the test set again (recorded in storage and the report)",
)
@click.option("--verbose", is_flag=True, help="copy each trial's output (stdout, stderr) to stderr")
@click.option(
    "--join",
    is_flag=True,
    help="help the drivers already running this study on the same storage",
)
@_handled
def run(
    spec: Path,
    storage: str | None,
    workers: int | None,
    as_json: bool,
    events_file: Path | None,
    max_new_trials: int | None,
    fresh: bool,
    allow_second_look: bool,
    verbose: bool,
    join: bool,
) -> None:
    """Run or resume the study to its budget, then score the best trial on the test set once."""
    from tunedag.capture import VERBOSE_ENV
    from tunedag.events import Events, JsonLines
    from tunedag.refit import NO_FIT
    from tunedag.study import run as run_study

    if verbose:
        os.environ[VERBOSE_ENV] = "1"  # worker processes inherit it
    click.get_current_context().meta["tunedag.run"] = True
    if as_json:
        _machine().version()  # the stream starts before the spec is read
    loaded = _load_spec(spec)
    events = Events(loaded.name)
    events.add(_Progress(loaded.budget.trials, loaded.objective.metric))
    if as_json:
        events.add(_machine().event)
    if events_file is not None:
        sink = JsonLines(_open_events_file(events_file))
        click.get_current_context().meta["tunedag.events_file"] = sink  # for _fail's events
        events.add(sink)
    result = run_study(
        loaded,
        workers=workers,
        storage=storage,
        max_new_trials=max_new_trials,
        fresh=fresh,
        allow_second_look=allow_second_look,
        join=join,
        events=events,
    )
    _summary(result, loaded.objective.metric)
    if loaded.trial is not None and loaded.trial.fit is None and result.finished:
        click.echo(NO_FIT, err=True)


@main.command()
@SPEC
@STORAGE
@click.option("--json", "as_json", is_flag=True, help="one JSON object on stdout")
@click.option(
    "--check", is_flag=True, help="check the storage file (SQLite integrity, tunedag invariants)"
)
@click.option(
    "--trial",
    "number",
    type=click.IntRange(min=0),
    help="one trial: its record and its output (what it wrote to stdout and stderr)",
)
@_handled
def status(spec: Path, storage: str | None, as_json: bool, check: bool, number: int | None) -> None:
    """Trials so far by state, the best, the stop reason; --trial N shows one trial."""
    from tunedag.result import read_status, status_payload
    from tunedag.spec.validate import read_spec
    from tunedag.trial_view import trial_status

    loaded = read_spec(spec)  # types only: status reads storage, it resolves no names
    click.get_current_context().meta["tunedag.study"] = loaded.name
    if check:
        from tunedag.storage_check import check_storage_file

        check_storage_file(storage or loaded.storage_url)
    if number is not None:
        shown = trial_status(loaded, number, storage=storage)
        if as_json:
            _machine().document(shown.to_dict())
        else:
            for line in shown.describe():
                click.echo(line, err=True)
        return
    result = read_status(loaded, storage=storage)
    if as_json:
        _machine().document(status_payload(loaded, result))
        return
    if result is None:
        click.echo(f"study {loaded.name!r} has not run yet", err=True)
        return
    counts = ", ".join(f"{n} {state}" for state, n in result.counts.items() if n)
    click.echo(f"study {result.study}: {counts or 'no trials'}", err=True)
    click.echo(f"  finished: {result.finished} ({result.reason or 'in progress'})", err=True)
    _drivers(result)
    _summary(result, loaded.objective.metric)


def _drivers(result: StudyResult) -> None:
    """Who runs the study, and which running trials no live driver runs any more."""
    for driver in result.drivers:
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(driver.since))
        state = "STALE, the next run takes it over" if driver.stale else "live"
        click.echo(
            f"  driver {driver.where} since {since}: last heartbeat "
            f"{driver.heartbeat_age_s:.0f} s ago ({state})",
            err=True,
        )
    stale = result.stale_running
    if stale:
        numbers = ", ".join(map(str, stale))
        click.echo(
            f"  stale: trial(s) {numbers} marked running, but no live driver runs them; "
            "the next `tunedag run` re-queues them",
            err=True,
        )


@main.command()
@SPEC
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="folder for report.html, its plots, trials.csv and results.json (created if missing)",
)
@STORAGE
@JSON
@_handled
def report(spec: Path, out: Path, storage: str | None, as_json: bool) -> None:
    """Write report.html with plots, trials.csv and results.json; reads storage only."""
    from tunedag.report import write_report

    loaded = _load_spec(spec)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise output_path_error(out, error, "--out") from error
    files = write_report(loaded, out, storage=storage)
    if files.result is None:
        click.echo(
            f"study {loaded.name!r} has not run yet in {storage or loaded.storage_url}; "
            "the report says so",
            err=True,
        )
    plots = f" and {len(files.plots)} plots" if files.plots else ""
    click.echo(
        f"wrote {files.html}{plots}, {files.trials_csv.name}, {files.results_json.name}", err=True
    )
    if as_json:
        _machine().document(
            {
                "html": str(files.html),
                "plots": [str(plot) for plot in files.plots],
                "trials_csv": str(files.trials_csv),
                "results_json": str(files.results_json),
            }
        )


@main.command()
@SPEC
@click.option(
    "--data",
    "source",
    required=True,
    help="the rows to predict: csv:PATH or parquet:PATH (a training column set)",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="where the predictions go: a .csv or .parquet file",
)
@click.option("--proba", is_flag=True, help="class probabilities too (classifiers)")
@STORAGE
@click.option("--json", "as_json", is_flag=True, help="a JSON summary on stdout")
@_handled
def predict(
    spec: Path, source: str, out: Path, proba: bool, storage: str | None, as_json: bool
) -> None:
    """Predict new rows with the study's saved model (the one its test set scored)."""
    from tunedag.predict import predict as predict_rows

    loaded = _load_spec(spec)
    written = predict_rows(loaded, source, out, proba=proba, storage=storage)
    if as_json:
        _machine().document(written.to_dict())
    click.echo(
        f"wrote {written.rows} predictions to {written.out} "
        f"(model of trial {written.trial}: {written.model})",
        err=True,
    )


@main.command()
@click.argument("spec", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="one JSON object on stdout")
@_handled
def looks(spec: Path | None, as_json: bool) -> None:
    """List the looks at SPEC's test rows (by their content), or every look in the ledger."""
    from tunedag.looks import LookLedger, ledger_path
    from tunedag.prepare import split_rows
    from tunedag.rows import rows_fingerprint
    from tunedag.spec.validate import base_dir_of
    from tunedag.storage import open_storage
    from tunedag.storage_postgres import is_postgres_url
    from tunedag.testlock import open_ledger

    rows: str | None = None
    if spec is None:
        path = str(ledger_path())
        with LookLedger(Path(path), readonly=True) as ledger:
            found = ledger.all_looks()
    else:
        loaded = _load_spec(spec)
        rows = rows_fingerprint(split_rows(loaded, base_dir_of(loaded))[1])
        with contextlib.ExitStack() as stack:
            store = None
            if is_postgres_url(loaded.storage_url):  # its looks live in its database
                store = stack.enter_context(open_storage(loaded.storage_url, Path.cwd()))
            shared = open_ledger(loaded, store, readonly=True)
            stack.callback(shared.close)
            path = str(shared.path)
            found = shared.looks(rows)
    if as_json:
        payload = {"ledger": str(path), "rows": rows, "looks": [look.to_dict() for look in found]}
        _machine().document(payload)
        return
    what = "these test rows" if rows is not None else "any test set"
    click.echo(f"ledger {path}: {len(found)} look{'s' * (len(found) != 1)} at {what}", err=True)
    for look in found:
        click.echo(f"  {look.describe()}", err=True)


@main.command()
@click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="one JSON object a spec, on stdout")
@_handled
def lint(specs: tuple[Path, ...], as_json: bool) -> None:
    """Check specs for leaks before any tuning runs (for CI): exit 0 clean, 65 otherwise."""
    from tunedag.lint import lint as lint_spec

    failed = 0
    for spec in specs:
        result = lint_spec(spec)
        failed += not result.ok
        if as_json:
            _machine().document(result.to_dict())
        for problem in result.problems:
            click.echo(str(problem), err=True)
        for warning in result.warnings:
            click.echo(f"warning: {warning}", err=True)
        if result.ok:
            note = "".join(
                f"; test set scored once by this spec ({look.describe()})" for look in result.looks
            )
            click.echo(f"{spec}: ok{note}", err=True)
    if failed:
        click.echo(f"lint: {failed} of {len(specs)} spec(s) failed", err=True)
        raise click.exceptions.Exit(65)


@main.command()
@click.option("--json", "as_json", is_flag=True)
@_handled
def plugins(as_json: bool) -> None:
    """Samplers, pruners, executors and observers, with the distribution that provides each,
    and the installed plugins that failed to load, with the reason."""
    from tunedag.registry import make_plugins

    loaded = make_plugins()
    rows = [
        {
            "kind": kind,
            "name": name,
            "plugin": p.plugin,
            "distribution": p.distribution,
            "version": p.version,
            "options": sorted(p.cls.Options.model_fields),
        }
        for kind, provided in loaded.provided.items()
        for name, p in sorted(provided.items())
    ]
    failed = [
        {
            "kind": "failed",
            "name": failure.plugin,
            "plugin": failure.plugin,
            "distribution": failure.distribution,
            "version": failure.version,
            "options": [],
            "reason": failure.reason,
        }
        for failure in loaded.failures
    ]
    if as_json:
        _machine().document(rows + failed)  # one line, as every --json document
        return
    for row in rows:
        options = ", ".join(row["options"]) or "-"
        click.echo(
            f"{row['kind']:<9} {row['name']:<20} {row['distribution']} {row['version']}"
            f"  [{row['plugin']}]  options: {options}"
        )
    for failure in loaded.failures:  # last; the fix only where blocking the name is one
        hides = (
            f" (TUNEDAG_DISABLED_PLUGINS={failure.plugin} hides it)" if failure.blockable else ""
        )
        click.echo(
            f"{'failed':<9} {failure.plugin:<20} {failure.distribution} {failure.version}"
            f"  {failure.reason}{hides}"
        )


@main.command()
@JSON
@_handled
def schema(as_json: bool) -> None:
    """Print the JSON Schema of the spec (with each installed plugin's options)."""
    from tunedag.registry import make_plugins
    from tunedag.schema import spec_schema

    # indented for a file and a reader; one line with --json, as every --json document
    _machine().document(spec_schema(make_plugins()), indent=None if as_json else 2)


class _Progress:
    """One line per finished trial on stderr; ``best=`` is the study's, across its runs."""

    def __init__(self, budget: int, metric: str) -> None:
        self.budget = budget
        self.metric = metric
        self.best: float | None = None
        self.finished = 0

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        number = event.get("number")
        best = event.get("best")  # the study's best, across every run of it
        if best is not None:
            self.best = best["value"]
        if kind == "study_started":
            self.finished = event["finished"]
        elif kind == "trial_completed":
            self.finished += 1
            value = event["value"]
            shown = "?" if self.best is None else f"{self.best:.5g}"
            click.echo(
                f"trial {number:>4} complete  {self.metric}={value:.5g}  "
                f"best={shown}  [{self.finished}/{self.budget}]",
                err=True,
            )
        elif kind in ("trial_pruned", "trial_failed", "trial_requeued"):
            self.finished += kind != "trial_requeued"
            detail = event.get("reason") or f"at step {event.get('step')}"
            click.echo(f"trial {number:>4} {kind.removeprefix('trial_')}: {detail}", err=True)
        elif kind == "study_finished":
            click.echo(f"study finished: {event['reason']}", err=True)
        elif kind == "warning":
            click.echo(f"warning: {event['message']}", err=True)


def _summary(result: StudyResult, metric: str) -> None:
    best = result.best
    if best is None:
        click.echo("no trial has completed yet", err=True)
        return
    click.echo(f"best trial {best.number}: {metric}={best.value:.5g} (cv)", err=True)
    for key, value in best.params.items():
        click.echo(f"  {key} = {value}", err=True)
    if result.test is not None:
        test = result.test
        flag = "  << larger than the fold spread explains" if test.flagged else ""
        click.echo(
            f"test {metric}={test.value:.5g}  cv={test.cv_value:.5g}  gap={test.gap:+.4f}{flag}",
            err=True,
        )
        _looks_summary(result)
    elif not result.finished:
        click.echo("study not finished: the test set is scored once it is", err=True)
    if result.baseline is not None:
        from tunedag.baseline import describe

        for line in describe(result.baseline, best, result.direction, metric):
            click.echo(line, err=True)


def _looks_summary(result: StudyResult) -> None:
    """Every look at the test rows, once there is more than one: never a silent second look."""
    count = result.look_count
    if count < 2:
        return
    seconds = result.second_look_count
    click.echo(
        f"SECOND LOOK: the test rows were scored {count} times ({seconds} second "
        f"look{'s' * (seconds != 1)}); the test score is no longer an unbiased estimate",
        err=True,
    )
    shown: list[Look] = result.looks
    for look in shown:
        click.echo(f"  {look.describe()}", err=True)
    if not shown:
        click.echo("  (recorded in this study's storage, before the look ledger)", err=True)


def _open_events_file(path: Path) -> TextIO:
    """The --events-file, appended to; it stays open until the command ends, so an error
    that ends the run reaches it too."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        stream = path.open("a", encoding="utf-8")
    except OSError as error:
        raise output_path_error(path, error, "--events-file") from error

    def close() -> None:
        with contextlib.suppress(OSError):  # every line was flushed, or its error reported
            stream.close()

    click.get_current_context().call_on_close(close)
    return stream
