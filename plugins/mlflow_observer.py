"""The ``mlflow`` observer: a study as one MLflow run, each trial a run nested under it.

.. code-block:: yaml

    observers:
      - {name: mlflow, options: {tracking_uri: "sqlite:///mlflow.db", experiment: tuning}}

Installed with ``pip install 'tunedag[mlflow]'``; mlflow is imported only by a study that
lists this observer. The parent run carries the objective, the sampler and the spec's
fingerprint; each trial's run its parameters, its value and fold values, the values a
pruner judged (as steps of ``intermediate``), its state and duration. When a run of the
study ends, the parent gets the best trial, the test value, and as artifacts
``best_trial.json``, ``results.json``, ``spec.json``, the report (once the study has
finished) and the model card.

A resumed study (after a kill, or run in slices with ``--max-new-trials``) logs into the
same parent run, found again by its ``tunedag.study_key`` tag (the study's name,
fingerprint and creation time in storage). Each trial is logged once: ``before_study``
logs the finished trials that the tracking store lacks (those finished in a run that was
killed before it could log them), and a trial that was running when its run stopped reuses
its run when it runs again.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import Field

from tunedag import hookimpl
from tunedag.observer import Observer
from tunedag.plugins._mlflow_runs import (
    FINAL,
    PARENT,
    STATUS,
    TAG,
    milliseconds,
    outcome_tags,
    study_key,
    study_tags,
    trial_metrics,
    trial_params,
    trial_tags,
)
from tunedag.storage import TrialRecord

# MLflow's limits for one log_batch call
_MAX_METRICS, _MAX_PARAMS = 1000, 100


class MlflowObserver(Observer):
    name = "mlflow"

    class Options(Observer.Options):
        tracking_uri: str | None = Field(
            None,
            description="the MLflow tracking URI (sqlite:///mlflow.db, http://host:5000, ...); "
            "default: MLFLOW_TRACKING_URI, else MLflow's own default",
        )
        experiment: str | None = Field(None, description="the experiment; default: the study name")
        artifact_location: str | None = Field(
            None, description="where an experiment this observer creates keeps its artifacts"
        )
        run_name: str | None = Field(None, description="the parent run's name; default: the study")
        tags: dict[str, str] = Field(
            default_factory=dict, description="extra tags for the parent run"
        )
        report: bool = Field(
            True, description="log the study's report (report.html, trials.csv) once it finished"
        )
        model: bool = Field(False, description="log the saved model (model.skops) besides its card")

    def __init__(self, options: Observer.Options | None = None) -> None:
        super().__init__(options)
        self._client: Any = None
        self._study: Any = None
        self._experiment = ""
        self._parent = ""
        self._key = ""
        self._sampler = ""
        self._metric = ""
        self._runs: dict[int, str] = {}  # trial number -> its run
        self._running: set[int] = set()  # trials whose run this driver set running
        self._status = "KILLED"  # how the study's run ends unless after_study says otherwise

    @classmethod
    def check_environment(cls) -> list[str]:
        if importlib.util.find_spec("mlflow") is None:
            return [
                "observer 'mlflow' needs the mlflow package, which is not installed; "
                "install it with: pip install 'tunedag[mlflow]'"
            ]
        return []

    # -- hooks ---------------------------------------------------------------------------------

    def before_study(self, study: Any) -> None:
        from mlflow.tracking import MlflowClient

        record = study.storage.get_study(study.name)
        self._study = study
        self._client = MlflowClient(tracking_uri=self.options.tracking_uri)
        self._key = study_key(record)
        self._sampler = study.spec.sampler.name
        self._metric = study.spec.objective.metric
        self._experiment = self._experiment_id(self.options.experiment or study.name)
        storage = str(study.storage.path or study.storage.url)
        tags = {**study_tags(record, self._key, self._sampler, storage), **self.options.tags}
        tags[f"{TAG}budget"] = str(study.spec.budget.trials)
        self._parent = self._open_parent(study, tags)
        logged = self._find_trial_runs()
        others = _other_drivers(study)  # a driver of a shared study logs its own trials
        for trial in study.storage.trials(study.name):
            if trial.state in FINAL and trial.number not in logged and trial.owner not in others:
                self._log_trial(trial)

    def before_trial(self, study: Any, trial: TrialRecord) -> None:
        run = self._runs.get(trial.number)
        if run is None:
            run = self._create_trial_run(trial)
        else:  # a trial re-queued by a stopped run runs again in its own run
            self._client.update_run(run, status="RUNNING")
            self._client.set_tag(run, f"{TAG}attempt", str(trial.attempt))
        self._running.add(trial.number)

    def after_trial(self, study: Any, trial: TrialRecord) -> None:
        self._log_trial(trial)
        self._running.discard(trial.number)

    def after_study(self, study: Any, result: Any) -> None:
        from mlflow.entities import Metric, RunTag

        now = milliseconds()
        finished = sum(result.counts.get(state.value, 0) for state in FINAL)
        metrics = [Metric(f"trials_{k}", v, now, finished) for k, v in result.counts.items()]
        tags = [RunTag(f"{TAG}reason", result.reason or "paused")]
        if result.best is not None:
            value = result.best.value
            metrics.append(Metric(f"best_{self._metric}", value, now, finished))
            tags.append(RunTag(f"{TAG}best_trial", str(result.best.number)))
        if result.test is not None:
            metrics.append(Metric(f"test_{self._metric}", result.test.value, now, 0))
            metrics.append(Metric("test_gap", result.test.gap, now, 0))
            tags.append(RunTag(f"{TAG}test_trial", str(result.test.trial_number)))
        self._client.log_batch(self._parent, metrics=metrics, tags=tags)
        self._log_artifacts(study, result)
        self._status = "FAILED" if result.reason == "failed" else "FINISHED"

    def close(self) -> None:
        if self._client is None or not self._parent:
            return
        for number in self._running:  # re-queued: the next run reuses these runs
            self._client.set_terminated(self._runs[number], "KILLED")
        self._running.clear()
        # called once this driver gave its lease back: of the drivers of a shared study
        # (run --join), the last one to stop ends the study's run
        if not _other_drivers(self._study):
            self._client.set_terminated(self._parent, self._status)

    # -- runs ----------------------------------------------------------------------------------

    def _experiment_id(self, name: str) -> str:
        from mlflow.exceptions import MlflowException

        experiment = self._client.get_experiment_by_name(name)
        if experiment is None:
            try:
                created: str = self._client.create_experiment(
                    name, artifact_location=self.options.artifact_location
                )
                return created
            except MlflowException:  # another driver of the study made it meanwhile
                experiment = self._client.get_experiment_by_name(name)
                if experiment is None:
                    raise
        if experiment.lifecycle_stage == "deleted":
            raise RuntimeError(
                f"MLflow experiment {name!r} is deleted; restore it, or name another "
                "with the observer's `experiment` option"
            )
        found: str = experiment.experiment_id
        return found

    def _open_parent(self, study: Any, tags: dict[str, str]) -> str:
        """The study's run: the one already holding its key, or a new one."""
        found = self._find_parent()
        if found is not None:
            self._client.update_run(found, status="RUNNING")
            for key, value in tags.items():
                self._client.set_tag(found, key, value)
            return found
        run_name = self.options.run_name or study.name
        created = self._client.create_run(self._experiment, run_name=run_name, tags=tags)
        created_id: str = created.info.run_id
        self._log_batch(
            created_id,
            params={
                "objective.metric": self._metric,
                "objective.direction": study.spec.objective.direction or "maximize",
                "seed": str(study.spec.seed),
            },
        )
        kept = self._find_parent()  # two drivers of one study may both have made one
        if kept is not None and kept != created_id:
            self._client.delete_run(created_id)
            return kept
        return created_id

    def _find_parent(self) -> str | None:
        """The study's run; of two made at once by two drivers, the same one for both."""
        runs = self._search(f"tags.`{TAG}study_key` = '{self._key}' and tags.`{TAG}role` = 'study'")
        first = min(runs, key=lambda run: (run.info.start_time, run.info.run_id), default=None)
        return None if first is None else str(first.info.run_id)

    def _find_trial_runs(self) -> set[int]:
        """Fill ``_runs`` with the trial runs under the parent; the trials fully logged."""
        logged: set[int] = set()
        for run in self._search(f"tags.`{PARENT}` = '{self._parent}'"):
            number = int(run.data.tags[f"{TAG}trial"])
            self._runs.setdefault(number, run.info.run_id)
            if f"{TAG}state" in run.data.tags:
                logged.add(number)
        return logged

    def _search(self, query: str) -> list[Any]:
        runs: list[Any] = []
        token = None
        while True:
            page = self._client.search_runs([self._experiment], query, page_token=token)
            runs += page
            token = page.token
            if not token:
                return runs

    def _create_trial_run(self, trial: TrialRecord) -> str:
        tags = trial_tags(trial, self._parent, self._key, self._sampler)
        run = self._client.create_run(
            self._experiment, start_time=milliseconds(trial.started_at), tags=tags
        )
        run_id: str = run.info.run_id
        self._runs[trial.number] = run_id
        self._log_batch(run_id, params=trial_params(trial))
        return run_id

    def _log_trial(self, trial: TrialRecord) -> None:
        """A final trial's numbers, then its state: a run with a state is fully logged."""
        run = self._runs.get(trial.number) or self._create_trial_run(trial)
        stamp = milliseconds(trial.finished_at)
        self._log_batch(
            run,
            metrics=trial_metrics(trial, self._metric),
            params=trial_params(trial),
            tags=outcome_tags(trial),
            timestamp=stamp,
        )
        self._client.set_terminated(run, STATUS[trial.state], end_time=stamp)

    def _log_batch(
        self,
        run: str,
        *,
        metrics: Sequence[tuple[str, float, int]] = (),
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
        timestamp: int | None = None,
    ) -> None:
        """One call while the batch fits MLflow's limits, the tags in the last call."""
        from mlflow.entities import Metric, Param, RunTag

        stamp = timestamp or milliseconds()
        metric_list = [Metric(name, value, stamp, step) for name, value, step in metrics]
        param_list = [Param(key, value) for key, value in (params or {}).items()]
        while len(metric_list) > _MAX_METRICS or len(param_list) > _MAX_PARAMS:
            self._client.log_batch(
                run, metrics=metric_list[:_MAX_METRICS], params=param_list[:_MAX_PARAMS]
            )
            metric_list, param_list = metric_list[_MAX_METRICS:], param_list[_MAX_PARAMS:]
        tag_list = [RunTag(key, value) for key, value in (tags or {}).items()]
        self._client.log_batch(run, metrics=metric_list, params=param_list, tags=tag_list)

    def _log_artifacts(self, study: Any, result: Any) -> None:
        from tunedag.model import card_path, model_path

        with tempfile.TemporaryDirectory(prefix="tunedag-mlflow-") as folder:
            root = Path(folder)
            summary = result.to_dict()
            files = {
                "results.json": summary,
                "spec.json": study.spec.model_dump(mode="json"),
                "best_trial.json": summary["best"],
            }
            for name, payload in files.items():
                text = json.dumps(payload, indent=2, default=str)
                (root / name).write_text(text + "\n", encoding="utf-8")
                self._client.log_artifact(self._parent, str(root / name))
            if self.options.report and result.finished:
                from tunedag.report import write_report

                report = write_report(study.spec, root / "report", storage=study.storage.url)
                self._client.log_artifacts(self._parent, str(report.directory), "report")
        model = model_path(study.spec, study.storage.url)
        for path in (card_path(model), model) if self.options.model else (card_path(model),):
            if path.is_file():
                self._client.log_artifact(self._parent, str(path), "model")


@hookimpl
def register_observers(register: Any) -> None:
    register(MlflowObserver)


def _other_drivers(study: Any) -> set[str]:
    """The lease owners of the other live drivers of a shared study (``run --join``)."""
    now, host = time.time(), socket.gethostname()
    return {
        lease.owner
        for lease in study.storage.leases(study.name)
        if not lease.stale(now, host) and (lease.host, lease.pid) != (host, os.getpid())
    }
