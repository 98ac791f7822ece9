"""One stored trial as ``tunedag status SPEC --trial N`` shows it: its record and its output."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunedag.errors import UsageError
from tunedag.spec.models import Spec
from tunedag.storage import TrialRecord, open_storage, storage_exists


@dataclass
class TrialView:
    study: str
    trial: TrialRecord
    #: the tail of what the trial wrote to stdout and stderr; None if nothing was kept
    output: str | None

    def to_dict(self) -> dict[str, Any]:
        trial = self.trial
        return {
            "study": self.study,
            "number": trial.number,
            "state": trial.state.value,
            "attempt": trial.attempt,
            "params": trial.params,
            "value": trial.value,
            "fold_values": trial.fold_values,
            "intermediate": {str(step): value for step, value in trial.intermediate.items()},
            "duration_s": trial.duration_s,
            "started_at": trial.started_at,
            "finished_at": trial.finished_at,
            "error": trial.error,
            "output": self.output,
        }

    def describe(self) -> list[str]:
        """The lines ``status --trial N`` prints on stderr."""
        trial = self.trial
        value = "" if trial.value is None else f"  value={trial.value:.5g}"
        lines = [f"trial {trial.number} of study {self.study}: {trial.state.value}{value}"]
        lines.append(f"  attempt {trial.attempt}" + _duration(trial.duration_s))
        lines += [f"  {name} = {param}" for name, param in trial.params.items()]
        if trial.error:
            lines.append("error:")
            lines += [f"  {line}" for line in trial.error.rstrip().splitlines()]
        if self.output is None:
            lines.append("output: none kept")
        elif not self.output:
            lines.append("output: (empty)")
        else:
            lines.append("output:")
            lines += self.output.rstrip("\n").splitlines()
        return lines


def trial_status(spec: Spec, number: int, *, storage: str | None = None) -> TrialView:
    """Trial ``number`` of ``spec``'s study; a UsageError (exit 2) if there is no such trial."""
    url = storage or spec.storage_url
    if not storage_exists(url, Path.cwd()):
        raise UsageError(f"study {spec.name!r} has not run yet in {url}: no trial {number}")
    with open_storage(url, Path.cwd()) as store:
        if store.get_study(spec.name) is None:
            raise UsageError(f"study {spec.name!r} has not run yet in {url}: no trial {number}")
        total = sum(store.count_trials(spec.name).values())
        if number >= total:
            raise UsageError(
                f"study {spec.name!r} has {total} trial{'s' * (total != 1)} "
                f"(0 to {total - 1}): no trial {number}"
                if total
                else f"study {spec.name!r} has no trials yet: no trial {number}"
            )
        return TrialView(
            spec.name, store.get_trial(spec.name, number), store.trial_output(spec.name, number)
        )


def _duration(seconds: float | None) -> str:
    return "" if seconds is None else f", {seconds:.2f}s"
