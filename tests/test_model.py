"""The tuned model: saved once beside the storage, loaded back only when trusted and current.

A finished study saves the model its test set scored as ``NAME/model.skops`` with a JSON
card beside it. These tests load it back (through the API and ``result.best_estimator``),
compare it with a refit done by hand in scikit-learn, and try to load changed, tampered
and foreign files, which are refused without anything in them being run.
"""

from __future__ import annotations

import json
import pickle
import signal
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io
from helpers import (
    base_spec,
    cli,
    open_store,
    popen,
    run_process,
    wait_until,
    write_spec,
)
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skops.io.exceptions import UntrustedTypesFoundException

import tunedag
from tunedag.artifact import file_sha256
from tunedag.errors import ModelNotFoundError, ModelRefusedError, SpecChangedError
from tunedag.model import card_path, model_path

EVIL_MODULE = '''
"""A class whose unpickling or skops loading writes a marker file: proof of execution."""
import os


class Payload:
    def __init__(self, marker=""):
        self.marker = marker

    def __setstate__(self, state):
        with open(os.environ["EVIL_MARKER"], "w") as marker:
            marker.write("executed")
        self.__dict__.update(state)

    def __reduce__(self):
        return (os.system, ("touch " + os.environ["EVIL_MARKER"],))
'''


def run_study(tmp_path: Path, **sections: Any) -> tuple[tunedag.Spec, tunedag.StudyResult]:
    spec = tunedag.load_spec(write_spec(tmp_path, base_spec(tmp_path, **sections)))
    return spec, tunedag.run(spec)


def hand_refit(params: dict[str, Any]) -> Any:
    """The base spec's pipeline with ``params``, fitted on its development rows by hand."""
    X, y = load_iris(return_X_y=True)
    dev, _ = train_test_split(np.arange(len(y)), test_size=0.25, random_state=7, stratify=y)
    dev = np.sort(dev)
    model = make_pipeline(StandardScaler(), KNeighborsClassifier())
    model.set_params(
        **{k.replace("model__", "kneighborsclassifier__"): v for k, v in params.items()}
    )
    return model.fit(X[dev], y[dev])


def new_rows(n: int = 30) -> np.ndarray:
    X, _ = load_iris(return_X_y=True)
    rng = np.random.default_rng(3)
    return X[rng.choice(len(X), n)] * rng.uniform(0.9, 1.1, size=(n, X.shape[1]))


def test_a_finished_study_saves_the_scored_model_and_its_card(tmp_path: Path) -> None:
    spec, result = run_study(tmp_path)
    path = model_path(spec)
    assert path == tmp_path / "study" / "model.skops"
    card = json.loads(card_path(path).read_text())
    assert card["study"] == "study" and card["trial"] == result.best.number  # type: ignore[union-attr]
    assert card["params"] == result.best_params
    assert card["cv"]["value"] == result.best_value
    assert card["test"]["value"] == result.test_value
    assert card["metric"] == "accuracy" and card["direction"] == "maximize"
    assert card["sha256"] == file_sha256(path)
    assert card["data"]["features"][:2] == ["sepal length (cm)", "sepal width (cm)"]
    assert {"scikit-learn", "skops", "tunedag"} <= set(card["versions"])
    assert not zipfile.ZipFile(path).testzip()  # a skops zip, not a pickle
    assert not list(path.parent.glob(".*.tmp"))


def test_the_loaded_model_predicts_as_a_refit_by_hand(tmp_path: Path) -> None:
    spec, result = run_study(tmp_path)
    assert result.best_params is not None
    expected = hand_refit(result.best_params).predict(new_rows())
    loaded = tunedag.load_model(spec)
    np.testing.assert_array_equal(loaded.predict(new_rows()), expected)
    np.testing.assert_array_equal(result.best_estimator.predict(new_rows()), expected)
    np.testing.assert_array_equal(tunedag.status(spec).best_estimator.predict(new_rows()), expected)  # type: ignore[union-attr]
    by_file = tunedag.load_model(model_path(spec))
    np.testing.assert_array_equal(by_file.predict(new_rows()), expected)


def test_a_rerun_of_a_finished_study_does_not_refit(tmp_path: Path) -> None:
    spec, _ = run_study(tmp_path)
    path = model_path(spec)
    before = (path.stat().st_mtime_ns, card_path(path).read_text())
    again = tunedag.run(spec)
    assert (path.stat().st_mtime_ns, card_path(path).read_text()) == before
    assert again.best_estimator is not None


def test_no_model_before_the_study_is_scored(tmp_path: Path) -> None:
    spec = tunedag.load_spec(write_spec(tmp_path, base_spec(tmp_path)))
    with pytest.raises(ModelNotFoundError, match="no saved model") as caught:
        tunedag.load_model(spec)
    assert caught.value.exit_code == 66
    paused = tunedag.run(spec, max_new_trials=1)
    with pytest.raises(ModelNotFoundError):
        _ = paused.best_estimator


def test_a_model_from_an_older_spec_is_refused_naming_what_changed(tmp_path: Path) -> None:
    run_study(tmp_path)
    changed = base_spec(
        tmp_path, space={"model__n_neighbors": {"type": "int", "low": 1, "high": 10}}
    )
    spec = tunedag.load_spec(write_spec(tmp_path, changed, "changed.json"))
    with pytest.raises(SpecChangedError, match="pipeline or search space changed") as caught:
        tunedag.load_model(spec)
    assert caught.value.exit_code == 65
    result = cli(
        ["predict", tmp_path / "changed.json", "--data", "x.csv", "--out", "p.csv"], tmp_path
    )
    assert result.exit_code == 65 and "older version of the spec" in result.stderr


def test_a_changed_byte_is_refused_before_loading(tmp_path: Path) -> None:
    spec, _ = run_study(tmp_path)
    path = model_path(spec)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelRefusedError, match="does not match its card"):
        tunedag.load_model(spec)


def forge(path: Path, payload: bytes) -> None:
    """Replace a saved model with ``payload`` and fix the card's sha256, as an attacker could."""
    path.write_bytes(payload)
    card = json.loads(card_path(path).read_text())
    card["sha256"] = file_sha256(path)
    card["allow_imports"] = ["evil", "posix", "os"]  # the card's own list is never trusted
    card_path(path).write_text(json.dumps(card))


@pytest.fixture
def evil(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "evil.py").write_text(EVIL_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    marker = tmp_path / "EXECUTED"
    monkeypatch.setenv("EVIL_MARKER", str(marker))
    return marker


def test_a_pickle_in_place_of_the_model_is_refused_and_never_run(
    tmp_path: Path, evil: Path
) -> None:
    import evil as evil_module  # type: ignore[import-not-found]

    spec, _ = run_study(tmp_path)
    forge(model_path(spec), pickle.dumps(evil_module.Payload("x")))
    with pytest.raises(ModelRefusedError, match="not a skops model file"):
        tunedag.load_model(spec)
    result = cli(["predict", tmp_path / "spec.json", "--data", "x.csv", "--out", "p.csv"], tmp_path)
    assert result.exit_code == 65 and "never loads pickles" in result.stderr
    assert not evil.exists()


def test_a_skops_file_with_untrusted_types_is_refused_listing_them(
    tmp_path: Path, evil: Path
) -> None:
    import os

    import evil as evil_module

    spec, _ = run_study(tmp_path)
    payload = skops.io.dumps({"model": evil_module.Payload("x"), "run": os.system})
    with pytest.raises(UntrustedTypesFoundException):  # skops itself refuses by default too
        skops.io.loads(payload)
    forge(model_path(spec), payload)
    with pytest.raises(ModelRefusedError, match="does not trust") as caught:
        tunedag.load_model(spec)
    assert "evil.Payload" in str(caught.value) and "posix.system" in str(caught.value)
    assert not evil.exists()
    # the same file with its types trusted would run the payload: the refusal is what stops it
    skops.io.loads(payload, trusted=skops.io.get_untrusted_types(data=payload))
    assert evil.exists()


def test_allow_imports_extends_the_trusted_types(tmp_path: Path, evil: Path) -> None:
    import evil as evil_module

    target = tmp_path / "other.skops"
    target.write_bytes(skops.io.dumps(evil_module.Payload("x")))
    with pytest.raises(ModelRefusedError, match=r"evil\.Payload"):
        tunedag.load_model(target)
    assert not evil.exists()
    assert tunedag.load_model(target, allow_imports=("evil",)).marker == "x"


def test_plain_data_that_fitted_estimators_hold_is_trusted(tmp_path: Path) -> None:
    """A fitted SimpleImputer keeps a numpy.dtype, which skops does not trust by default; a
    model holding one must still load (LightGBM's OrderedDict: the slow example-spec test)."""
    from sklearn.impute import SimpleImputer

    X = np.array([[1.0, np.nan], [2.0, 3.0], [np.nan, 4.0]])
    model = make_pipeline(SimpleImputer(), StandardScaler()).fit(X)
    target = tmp_path / "imputer.skops"
    target.write_bytes(skops.io.dumps(model))
    assert skops.io.get_untrusted_types(file=target) == ["numpy.dtype"]
    assert np.allclose(tunedag.load_model(target).transform(X), model.transform(X))


def test_the_spec_may_name_the_model_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    spec, _ = run_study(tmp_path, model="models/iris.skops")
    assert model_path(spec) == Path.cwd() / "models" / "iris.skops"
    assert (Path.cwd() / "models" / "iris.card.json").is_file()
    assert tunedag.load_model(spec).predict(new_rows(3)).shape == (3,)


@pytest.mark.slow
def test_a_sigkill_during_the_save_leaves_no_model_and_the_next_run_finishes(
    tmp_path: Path,
) -> None:
    """A real ``tunedag run`` killed while it writes a large forest: nothing half-written."""
    spec = base_spec(
        tmp_path,
        data={"source": "sklearn:breast_cancer"},
        pipeline=[
            {
                "name": "model",
                "estimator": "sklearn.ensemble.ExtraTreesClassifier",
                "params": {"random_state": 0},
            }
        ],
        # 600 trees take about 0.6 s to write on a quiet machine (120 took 85 ms, short
        # enough for the 10 ms poll below to miss), and longer on a loaded one
        space={"model__n_estimators": {"type": "int", "values": [600]}},
        budget={"trials": 1},
        baseline=False,
    )
    path = write_spec(tmp_path, spec)
    folder = tmp_path / "study"
    log = tmp_path / "run.log"
    proc = popen(["run", path], tmp_path, log=log)
    try:
        wait_until(
            lambda: list(folder.glob(".model.skops.*.tmp")), 120, "the save began", proc, log
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (folder / "model.skops").exists() and not (folder / "model.card.json").exists()
    with open_store(spec) as store:
        assert store.test_evaluations("study") == []  # the look was not recorded either

    again = run_process(["run", path], tmp_path)
    assert again.returncode == 0, again.stderr
    assert not list(folder.glob(".*.tmp"))
    card = json.loads((folder / "model.card.json").read_text())
    assert card["sha256"] == file_sha256(folder / "model.skops")
    with open_store(spec) as store:
        assert len(store.test_evaluations("study")) == 1
    model = tunedag.load_model(tunedag.load_spec(path))
    assert model.score(*load_breast_cancer(return_X_y=True)) > 0.9


def test_a_removed_model_is_refit_without_a_second_look(tmp_path: Path) -> None:
    spec, result = run_study(tmp_path)
    path = model_path(spec)
    expected = result.best_estimator.predict(new_rows())
    path.unlink()
    again = tunedag.run(spec)
    assert len(again.trials) == len(result.trials) and again.second_looks == 0
    card = json.loads(card_path(path).read_text())
    assert card["refit_after_evaluation"] is True and card["sha256"] == file_sha256(path)
    assert card["test"]["value"] == result.test_value
    np.testing.assert_array_equal(tunedag.load_model(spec).predict(new_rows()), expected)
