"""Bayesmark-derived tasks: its scikit-learn models, search spaces and objective.

Bayesmark (Uber's benchmark, the one the NeurIPS 2020 black-box optimisation challenge
ran on) scores an optimiser on ``model x dataset x metric`` problems: the objective is
the mean 5-fold cross-validation loss (``cross_val_score`` with its default, unshuffled
folds) on a fixed 80% training split (``train_test_split(test_size=0.2, random_state=0)``)
of the raw scikit-learn dataset. The models and spaces here are bayesmark's ``SVM``,
``DT``, ``kNN`` and ``linear`` classifiers (``sklearn_funcs.py``), with two changes:

* its ``logit`` scale (bounded fractions) is a plain linear float here, as a tunedag spec
  would write it: finding the right scale is the sampler's job;
* models with a random state get ``random_state=0`` so the objective is deterministic
  (bayesmark leaves the decision tree's feature draws to the global generator).

The metrics are computed with numpy (the same values as scikit-learn's ``accuracy`` and
``neg_log_loss`` scorers: ``python benchmarks/bayesmark_tasks.py`` checks that).

``HELD_OUT`` (six problems, fixed before any tuning) and ``TUNING`` (four others, plus the
eight tasks of ``tasks.py``) are the two sets of ``benchmarks/samplers.py --protocol``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
from sklearn import datasets
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import get_scorer
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.multiclass import OneVsRestClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from tunedag.space import Params, SearchSpace
from tunedag.spec.models import FloatDimension, IntDimension

DATASETS = {"breast": "breast_cancer", "wine": "wine", "digits": "digits"}


def real(low: float, high: float, log: bool = False) -> FloatDimension:
    return FloatDimension(type="float", low=low, high=high, log=log)


def integer(low: int, high: int) -> IntDimension:
    return IntDimension(type="int", low=low, high=high)


SPACES: dict[str, dict[str, Any]] = {
    "SVM": {
        "C": real(1.0, 1e3, log=True),
        "gamma": real(1e-4, 1e-3, log=True),
        "tol": real(1e-5, 1e-1, log=True),
    },
    "DT": {
        "max_depth": integer(1, 15),
        "min_samples_split": real(0.01, 0.99),
        "min_samples_leaf": real(0.01, 0.49),
        "min_weight_fraction_leaf": real(0.01, 0.49),
        "max_features": real(0.01, 0.99),
        "min_impurity_decrease": real(0.0, 0.5),
    },
    "kNN": {"n_neighbors": integer(1, 25), "p": integer(1, 4)},
    "linear": {
        "C": real(1e-2, 1e2, log=True),
        "intercept_scaling": real(1e-2, 1e2, log=True),
    },
}


def build(model: str, metric: str, params: Params) -> BaseEstimator:
    if model == "SVM":  # probabilities only where the metric needs them (predict ignores them)
        return SVC(kernel="rbf", probability=metric == "nll", random_state=0, **params)
    if model == "DT":
        return DecisionTreeClassifier(random_state=0, **params)
    if model == "kNN":
        return KNeighborsClassifier(**params)
    # bayesmark's multi_class="ovr" (removed from scikit-learn): one-vs-rest, as liblinear did
    return OneVsRestClassifier(LogisticRegression(solver="liblinear", **params))


def _accuracy(model: Any, X: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(model.predict(X) == y))


def _neg_log_loss(model: Any, X: np.ndarray, y: np.ndarray) -> float:
    """Minus the mean log loss, probabilities renormalised and clipped at float64 eps as
    scikit-learn's ``log_loss`` does."""
    proba = model.predict_proba(X)
    proba = proba / proba.sum(axis=1, keepdims=True)
    index = np.searchsorted(model.classes_, y)
    eps = np.finfo(np.float64).eps
    return float(np.mean(np.log(np.clip(proba[np.arange(len(y)), index], eps, 1.0))))


SCORERS: dict[str, Callable[[Any, np.ndarray, np.ndarray], float]] = {
    "acc": _accuracy,
    "nll": _neg_log_loss,
}
SKLEARN_NAMES = {"acc": "accuracy", "nll": "neg_log_loss"}


@cache
def data(dataset: str) -> tuple[np.ndarray, np.ndarray, list[tuple[Any, Any]]]:
    """Bayesmark's training split of the raw dataset and the 5 folds of cross_val_score."""
    X, y = getattr(datasets, f"load_{DATASETS[dataset]}")(return_X_y=True)
    X, _, y, _ = train_test_split(X, y, test_size=0.2, random_state=0, shuffle=True)
    return X, y, list(StratifiedKFold(5).split(X, y))


@dataclass(frozen=True)
class BayesmarkTask:
    """``model-dataset-metric``; the objective is the mean CV score (minus the loss)."""

    model: str
    dataset: str
    metric: str
    space: SearchSpace = field(compare=False)

    @property
    def name(self) -> str:
        return f"{self.model}-{self.dataset}-{self.metric}"

    @property
    def scoring(self) -> str:
        return SKLEARN_NAMES[self.metric]

    @property
    def rows(self) -> int:
        return len(data(self.dataset)[1])

    def objective(self) -> Callable[[Params], float]:
        """params -> mean 5-fold CV score (accuracy, or minus the log loss), memoised: the
        objective is deterministic, so a configuration two methods propose is fitted once."""
        X, y, folds = data(self.dataset)
        scorer = SCORERS[self.metric]
        memo: dict[str, float] = {}

        def evaluate(params: Params) -> float:
            key = repr(sorted(params.items()))
            if key in memo:
                return memo[key]
            scores = []
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                warnings.simplefilter("ignore", UserWarning)
                warnings.simplefilter("ignore", RuntimeWarning)
                warnings.simplefilter("ignore", FutureWarning)  # SVC(probability=True)
                for train, test in folds:
                    model = build(self.model, self.metric, params).fit(X[train], y[train])
                    scores.append(scorer(model, X[test], y[test]))
            value = float(np.mean(scores))
            memo[key] = value if np.isfinite(value) else -1e3
            return memo[key]

        return evaluate


def task(name: str) -> BayesmarkTask:
    model, dataset, metric = name.split("-")
    return BayesmarkTask(model, dataset, metric, SearchSpace(SPACES[model]))


#: fixed before any tuning: every model, every dataset, both metrics
HELD_OUT = [
    task(name)
    for name in (
        "SVM-wine-nll",
        "SVM-breast-acc",
        "DT-digits-acc",
        "DT-wine-nll",
        "kNN-breast-nll",
        "linear-breast-nll",
    )
]
#: bayesmark problems the defaults may be tuned on (none of them in HELD_OUT)
TUNING = [
    task(name) for name in ("SVM-wine-acc", "DT-breast-nll", "kNN-wine-acc", "linear-wine-acc")
]


if __name__ == "__main__":  # check the fast metrics against scikit-learn's scorers
    for problem in HELD_OUT + TUNING:
        X, y, folds = data(problem.dataset)
        train, test = folds[0]
        for seed in range(2):
            params = problem.space.sample(np.random.default_rng(seed))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = build(problem.model, problem.metric, params).fit(X[train], y[train])
            ours = SCORERS[problem.metric](model, X[test], y[test])
            theirs = get_scorer(problem.scoring)(model, X[test], y[test])
            assert abs(ours - theirs) < 1e-9 * max(1.0, abs(theirs)), (problem.name, ours, theirs)
        print(f"{problem.name:22s} matches scikit-learn")
