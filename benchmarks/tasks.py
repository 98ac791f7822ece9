"""Bayesmark-style benchmark tasks: a scikit-learn model, a dataset and a search space.

Each task is a small, cheap, deterministic objective: the mean 3-fold cross-validation
score (higher is better) of a model with fixed seeds, on a fixed stratified subset of a
scikit-learn dataset with fixed folds. Models are kept small (at most 30 trees or
boosting rounds, a few dozen MLP epochs) so a whole comparison fits in minutes; what is
compared is how fast each sampler finds good configurations, not the models' best scores.

The search spaces are tunedag dimensions (the spec's ``space:``), so every sampler,
tunedag's and the peers', searches exactly the same space, conditional parameters included.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
from scipy.stats import rankdata
from sklearn import datasets
from sklearn.base import BaseEstimator
from sklearn.ensemble import (
    AdaBoostClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import ElasticNet
from sklearn.metrics import get_scorer
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, PolynomialFeatures, StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from tunedag.space import SearchSpace
from tunedag.spec.models import CategoricalDimension, FloatDimension, IntDimension

Params = dict[str, Any]


def real(low: float, high: float, log: bool = False, **kw: Any) -> FloatDimension:
    return FloatDimension(type="float", low=low, high=high, log=log, **kw)


def integer(low: int, high: int, log: bool = False, **kw: Any) -> IntDimension:
    return IntDimension(type="int", low=low, high=high, log=log, **kw)


def choice(*choices: Any, **kw: Any) -> CategoricalDimension:
    return CategoricalDimension(type="categorical", choices=list(choices), **kw)


@dataclass(frozen=True)
class Task:
    name: str
    dataset: str
    rows: int
    scoring: str
    space: SearchSpace = field(compare=False)
    build: Callable[[Params], BaseEstimator] = field(compare=False)

    def objective(self) -> Callable[[Params], float]:
        """The task's objective: params -> mean 3-fold CV score (higher is better)."""
        X, y, folds = data(self.dataset, self.rows)
        scorer = SCORERS[self.scoring]

        def evaluate(params: Params) -> float:
            scores = []
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                warnings.simplefilter("ignore", UserWarning)
                warnings.simplefilter("ignore", RuntimeWarning)
                for train, test in folds:
                    model = self.build(params)
                    model.fit(X[train], y[train])
                    scores.append(scorer(model, X[test], y[test]))
            value = float(np.mean(scores))
            return value if np.isfinite(value) else -1.0

        return evaluate


def _roc_auc(model: Any, X: np.ndarray, y: np.ndarray) -> float:
    """Binary ROC AUC from the ranks of the scores (ties share their mean rank), as
    ``sklearn.metrics.roc_auc_score`` computes it."""
    if hasattr(model, "decision_function"):
        score = model.decision_function(X)
    else:
        score = model.predict_proba(X)[:, 1]
    positive = y == model.classes_[1]
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _neg_log_loss(model: Any, X: np.ndarray, y: np.ndarray) -> float:
    """Minus the mean log loss, probabilities clipped at float64 eps as scikit-learn does."""
    proba = model.predict_proba(X)
    index = np.searchsorted(model.classes_, y)
    eps = np.finfo(np.float64).eps
    return float(np.mean(np.log(np.clip(proba[np.arange(len(y)), index], eps, 1.0))))


def _accuracy(model: Any, X: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(model.predict(X) == y))


def _r2(model: Any, X: np.ndarray, y: np.ndarray) -> float:
    residual = y - model.predict(X)
    return float(1.0 - residual @ residual / np.sum((y - y.mean()) ** 2))


#: The metrics, computed directly with numpy: the same values as scikit-learn's scorers of
#: these names (checked in ``__main__`` below), without their per-call validation, which
#: costs as much as fitting these small models.
SCORERS: dict[str, Callable[[Any, np.ndarray, np.ndarray], float]] = {
    "roc_auc": _roc_auc,
    "neg_log_loss": _neg_log_loss,
    "accuracy": _accuracy,
    "r2": _r2,
}


@cache
def data(name: str, rows: int) -> tuple[np.ndarray, np.ndarray, list[tuple[Any, Any]]]:
    """The dataset (a fixed subset of ``rows`` rows) and its fixed 3 folds; shared by all."""
    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    rng = np.random.default_rng(0)
    classification = name != "diabetes"
    if rows < len(y):
        if classification:  # a stratified subset: the same share of each class
            keep = np.concatenate(
                [
                    rng.choice(np.flatnonzero(y == c), round(rows * np.mean(y == c)), replace=False)
                    for c in np.unique(y)
                ]
            )
        else:
            keep = rng.choice(len(y), rows, replace=False)
        keep = np.sort(keep)
        X, y = X[keep], y[keep]
    splitter = (StratifiedKFold if classification else KFold)(3, shuffle=True, random_state=0)
    return X, y, list(splitter.split(X, y))


def _scaler(name: str) -> Any:
    return {"none": "passthrough", "standard": StandardScaler(), "minmax": MinMaxScaler()}[name]


def _svc(p: Params) -> BaseEstimator:
    return Pipeline(
        [
            ("scale", StandardScaler()),
            (
                "model",
                SVC(
                    C=p["C"],
                    gamma=p["gamma"],
                    kernel=p["kernel"],
                    degree=p.get("degree", 3),
                    coef0=p.get("coef0", 0.0),
                    max_iter=1000,
                ),
            ),
        ]
    )


def _rf(p: Params) -> BaseEstimator:
    return RandomForestClassifier(
        n_estimators=p["n_estimators"],
        max_depth=p["max_depth"],
        max_features=p["max_features"],
        min_samples_split=p["min_samples_split"],
        criterion=p["criterion"],
        random_state=0,
    )


def _gb(p: Params) -> BaseEstimator:
    return GradientBoostingRegressor(
        n_estimators=p["n_estimators"],
        learning_rate=p["learning_rate"],
        max_depth=p["max_depth"],
        subsample=p["subsample"],
        random_state=0,
    )


def _mlp(p: Params) -> BaseEstimator:
    return Pipeline(
        [
            ("scale", StandardScaler()),
            (
                "model",
                MLPClassifier(
                    hidden_layer_sizes=(p["width"],),
                    alpha=p["alpha"],
                    learning_rate_init=p["learning_rate_init"],
                    activation=p["activation"],
                    max_iter=6,
                    random_state=0,
                ),
            ),
        ]
    )


def _knn(p: Params) -> BaseEstimator:
    return Pipeline(
        [
            ("scale", _scaler(p["scaler"])),
            (
                "model",
                KNeighborsClassifier(n_neighbors=p["n_neighbors"], weights=p["weights"], p=p["p"]),
            ),
        ]
    )


def _enet(p: Params) -> BaseEstimator:
    # degree-2 features (65 on 240 rows): without the right regularisation it overfits
    return Pipeline(
        [
            ("expand", PolynomialFeatures(2, include_bias=False)),
            ("scale", StandardScaler()),
            ("model", ElasticNet(alpha=p["alpha"], l1_ratio=p["l1_ratio"], max_iter=300)),
        ]
    )


def _tree(p: Params) -> BaseEstimator:
    return DecisionTreeClassifier(
        max_depth=p["max_depth"],
        min_samples_split=p["min_samples_split"],
        min_samples_leaf=p["min_samples_leaf"],
        max_features=p["max_features"],
        criterion=p["criterion"],
        random_state=0,
    )


def _ada(p: Params) -> BaseEstimator:
    return AdaBoostClassifier(
        DecisionTreeClassifier(max_depth=p["max_depth"], random_state=0),
        n_estimators=p["n_estimators"],
        learning_rate=p["learning_rate"],
        random_state=0,
    )


def space(**dimensions: Any) -> SearchSpace:
    return SearchSpace(dimensions)


TASKS: list[Task] = [
    Task(
        "SVC/breast_cancer",
        "breast_cancer",
        240,
        "roc_auc",
        space(
            C=real(1e-3, 1e3, log=True),
            gamma=real(1e-5, 1e1, log=True),
            kernel=choice("rbf", "poly", "sigmoid"),
            degree=integer(2, 4, when={"kernel": "poly"}),
            coef0=real(0.0, 1.0, when={"kernel": ["poly", "sigmoid"]}),
        ),
        _svc,
    ),
    Task(
        "RF/wine",
        "wine",
        178,
        "neg_log_loss",
        space(
            n_estimators=integer(2, 4),
            max_depth=integer(1, 10),
            max_features=real(0.05, 1.0),
            min_samples_split=integer(2, 30, log=True),
            criterion=choice("gini", "entropy"),
        ),
        _rf,
    ),
    Task(
        "GB/diabetes",
        "diabetes",
        240,
        "r2",
        space(
            n_estimators=integer(2, 8),
            learning_rate=real(1e-2, 1.0, log=True),
            max_depth=integer(1, 5),
            subsample=real(0.3, 1.0),
        ),
        _gb,
    ),
    Task(
        "MLP/iris",
        "iris",
        150,
        "neg_log_loss",
        space(
            width=integer(2, 32, log=True),
            alpha=real(1e-6, 1e1, log=True),
            learning_rate_init=real(1e-4, 1.0, log=True),
            activation=choice("relu", "tanh", "logistic"),
        ),
        _mlp,
    ),
    Task(  # a finite space: grid search applies
        "kNN/breast_cancer",
        "breast_cancer",
        240,
        "roc_auc",
        space(
            scaler=choice("none", "standard", "minmax"),
            n_neighbors=integer(1, 30),
            weights=choice("uniform", "distance"),
            p=choice(1, 2),
        ),
        _knn,
    ),
    Task(
        "ElasticNet/diabetes",
        "diabetes",
        240,
        "r2",
        space(alpha=real(1e-4, 1e1, log=True), l1_ratio=real(0.0, 1.0)),
        _enet,
    ),
    Task(
        "DecisionTree/digits",
        "digits",
        300,
        "accuracy",
        space(
            max_depth=integer(1, 15),
            min_samples_split=integer(2, 40, log=True),
            min_samples_leaf=integer(1, 20, log=True),
            max_features=real(0.05, 1.0),
            criterion=choice("gini", "entropy"),
        ),
        _tree,
    ),
    Task(
        "AdaBoost/wine",
        "wine",
        178,
        "neg_log_loss",
        space(
            n_estimators=integer(2, 5),
            learning_rate=real(1e-3, 3.0, log=True),
            max_depth=integer(1, 4),
        ),
        _ada,
    ),
]


if __name__ == "__main__":  # check the fast metrics against scikit-learn's scorers
    for task in TASKS:
        X, y, folds = data(task.dataset, task.rows)
        train, test = folds[0]
        for seed in range(3):
            params = task.space.sample(np.random.default_rng(seed))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = task.build(params).fit(X[train], y[train])
            ours = SCORERS[task.scoring](model, X[test], y[test])
            theirs = get_scorer(task.scoring)(model, X[test], y[test])
            assert abs(ours - theirs) < 1e-9 * max(1.0, abs(theirs)), (task.name, ours, theirs)
        print(f"{task.name:28s} {task.scoring:13s} matches scikit-learn")
