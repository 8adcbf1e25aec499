"""Evaluation metrics in plain numpy: the same figures for validation and live accuracy."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Array = npt.ArrayLike


def _arrays(y: Array, p: Array) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    yt = np.asarray(y, dtype=np.int64).ravel()
    ps = np.asarray(p, dtype=np.float64).ravel()
    if yt.shape != ps.shape:
        raise ValueError(f"{yt.size} labels but {ps.size} predictions")
    return yt, ps


def _ranks(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """1-based ranks, ties sharing their mean rank."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(values.size, dtype=np.float64)
    sorted_values = values[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_values)) + 1]
    ends = np.r_[starts[1:], values.size]
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        ranks[order[s:e]] = (s + e + 1) / 2.0
    return ranks


def roc_auc(y: Array, p: Array) -> float:
    """Area under the ROC curve (Mann-Whitney, ties count one half); NaN with one class."""
    yt, ps = _arrays(y, p)
    pos = int(yt.sum())
    neg = yt.size - pos
    if pos == 0 or neg == 0:
        return float("nan")
    ranks = _ranks(ps)
    return float((ranks[yt == 1].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def pr_auc(y: Array, p: Array) -> float:
    """Average precision: the mean of the precision at each positive's threshold (tied
    scores form one threshold); NaN without positives."""
    yt, ps = _arrays(y, p)
    pos = int(yt.sum())
    if pos == 0:
        return float("nan")
    order = np.argsort(-ps, kind="mergesort")
    ys, ss = yt[order], ps[order]
    # The last index of each group of tied scores is where a threshold is evaluated.
    last = np.r_[np.flatnonzero(np.diff(ss)), ss.size - 1]
    tp = np.cumsum(ys)[last]
    precision = tp / (last + 1.0)
    recall_gain = np.diff(np.r_[0, tp]) / pos
    return float(np.sum(precision * recall_gain))


def precision_recall_at(y: Array, p: Array, threshold: float) -> tuple[float, float]:
    """(precision, recall) when predictions >= threshold are flagged (NaN when undefined)."""
    yt, ps = _arrays(y, p)
    flagged = ps >= threshold
    tp = int(np.sum(flagged & (yt == 1)))
    n_flagged, pos = int(flagged.sum()), int(yt.sum())
    precision = tp / n_flagged if n_flagged else float("nan")
    recall = tp / pos if pos else float("nan")
    return precision, recall


def top_decile_lift(y: Array, p: Array) -> float:
    """Churn rate among the top 10% by prediction (at least one row; ties broken by order)
    over the overall rate; NaN without positives."""
    yt, ps = _arrays(y, p)
    if yt.size == 0 or yt.sum() == 0:
        return float("nan")
    k = max(1, int(np.ceil(yt.size * 0.1)))
    top = np.argsort(-ps, kind="mergesort")[:k]
    return float(yt[top].mean() / yt.mean())


def brier(y: Array, p: Array) -> float:
    """Mean squared difference between probability and outcome."""
    yt, ps = _arrays(y, p)
    if yt.size == 0:
        return float("nan")
    return float(np.mean((ps - yt) ** 2))


def calibration_table(y: Array, p: Array, bins: int = 10) -> list[tuple[int, float, float, int]]:
    """(bin, mean predicted, observed rate, count) over equal-width probability bins on
    [0, 1] (bin k holds [k/bins, (k+1)/bins), the last one includes 1); empty bins left out."""
    yt, ps = _arrays(y, p)
    index = np.clip(np.floor(ps * bins).astype(np.int64), 0, bins - 1)
    out: list[tuple[int, float, float, int]] = []
    for k in range(bins):
        mask = index == k
        count = int(mask.sum())
        if count:
            out.append((k, float(ps[mask].mean()), float(yt[mask].mean()), count))
    return out


# The report's layout, shared by the terminal and the dashboard: the models side by side
# (keys of `metrics`) and the figures of `training.evaluate`, in order.
REPORT_MODELS = (  # key, label, short label (terminal columns)
    ("lightgbm", "LightGBM", "LightGBM"),
    ("logistic_regression", "Logistic regression", "Logistic reg."),
    ("health_score", "Health score alone", "Health score"),
)
REPORT_ROWS = (
    ("roc_auc", "ROC AUC"),
    ("pr_auc", "PR AUC"),
    ("precision", "Precision at the threshold"),
    ("recall", "Recall at the threshold"),
    ("flagged", "Flagged at the threshold"),
    ("lift_top_decile", "Lift, top decile"),
    ("brier", "Brier score"),
    ("examples", "Examples"),
    ("churns", "Churns"),
)
