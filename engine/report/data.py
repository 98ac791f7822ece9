"""Everything a report shows, read from storage once; nothing here writes to storage."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tunedag.result import StudyResult, read_result
from tunedag.spec.models import Spec
from tunedag.storage import (
    StudyRecord,
    TestEvaluation,
    TrialRecord,
    TrialState,
    open_storage,
    storage_exists,
)
from tunedag.study import direction_of
from tunedag.testlock import looks_of_study


@dataclass
class ReportData:
    """A study as stored, next to the spec that describes it.

    ``result`` is None when the study has not run yet: the report then says so instead of
    failing, just as ``tunedag status`` does.
    """

    spec: Spec
    storage_url: str
    result: StudyResult | None
    record: StudyRecord | None = None
    evaluations: list[TestEvaluation] = field(default_factory=list)
    #: what the failed trials wrote to stdout and stderr (the kept tail), by trial number
    failed_outputs: dict[int, str] = field(default_factory=dict)

    @property
    def direction(self) -> str:
        return direction_of(self.spec)

    @property
    def metric(self) -> str:
        return self.spec.objective.metric

    @property
    def trials(self) -> list[TrialRecord]:
        return self.result.trials if self.result is not None else []

    @property
    def second_looks(self) -> list[TestEvaluation]:
        return [e for e in self.evaluations if e.second_look]


def collect(spec: Spec, storage: str | None = None) -> ReportData:
    """Read the study ``tunedag status`` reads, plus every test evaluation and the record.

    A storage file that does not exist is left uncreated: a report only ever reads.
    """
    url = storage or spec.storage_url
    if not storage_exists(url, Path.cwd()):
        return ReportData(spec, url, None)
    with open_storage(url, Path.cwd()) as store:
        record = store.get_study(spec.name)
        if record is None:
            return ReportData(spec, url, None)
        result = read_result(store, record, direction_of(spec))
        evaluations = store.test_evaluations(spec.name)
        result.looks = looks_of_study(spec, evaluations, store)
        failed = [t.number for t in result.trials if t.state == TrialState.FAILED]
        outputs = store.trial_outputs(spec.name, failed)
    return ReportData(spec, url, result, record, evaluations, outputs)
