"""Training on arrays (no database): the out-of-time split, refusals, calibration, the
baselines, drift and the fingerprint."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from tenure.churn import metrics as M
from tenure.churn import training
from tenure.churn.dataset import monthly_snapshots
from tenure.churn.training import TrainingRefused

SNAPS = monthly_snapshots(datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 12, 1, tzinfo=UTC))
FEATURES = ["signal", "noise", "plan", "health_score"]


def business(per_snapshot: int = 600, seed: int = 3, base: float = -2.4):
    """Examples whose churn probability is a known logistic function of `signal` and plan;
    `noise` carries nothing; health_score is a noisy view of the same risk."""
    rng = np.random.default_rng(seed)
    n = per_snapshot * len(SNAPS)
    signal = rng.normal(size=n)
    plan = rng.integers(0, 3, size=n).astype(np.float64)
    logit = base + 1.3 * signal + np.where(plan == 2, 0.8, 0.0)
    p = 1 / (1 + np.exp(-logit))
    y = (rng.random(n) < p).astype(np.int64)
    health = np.clip(70 - 12 * signal + rng.normal(scale=15, size=n), 0, 100)
    health[rng.random(n) < 0.05] = np.nan
    X = np.column_stack([signal, rng.normal(size=n), plan, health])
    snapshots = [s for s in SNAPS for _ in range(per_snapshot)]
    return X, y, p, snapshots


def test_split_is_out_of_time_with_the_label_gap() -> None:
    matured = np.array([s <= SNAPS[-3] for s in SNAPS])
    rows = np.repeat(matured, 2)
    snapshots = [s for s in SNAPS for _ in range(2)]
    s = training.split(snapshots, rows, horizon_days=60, grace_days=14, valid_count=3)
    assert s.valid_snapshots == SNAPS[-5:-2]  # the latest three matured ones
    gap = timedelta(days=74)
    assert s.train_snapshots[-1] + gap <= s.valid_snapshots[0]
    assert SNAPS[-6] not in s.train_snapshots  # its label was not known yet then
    assert s.tune_snapshots == s.train_snapshots[-len(s.tune_snapshots) :]
    assert not np.any(s.fit & s.tune) and not np.any(s.train & s.valid)
    assert not np.any(s.valid & ~rows)  # unmatured rows are never used
    assert int(s.valid.sum()) == 6 and int(s.train.sum()) == 2 * len(s.train_snapshots)


def test_split_refuses_short_history() -> None:
    snaps = SNAPS[:2]
    with pytest.raises(TrainingRefused, match="found 2 snapshot"):
        training.split(snaps, np.ones(2, dtype=bool), horizon_days=60, grace_days=14, valid_count=3)
    snaps = SNAPS[:4]
    with pytest.raises(TrainingRefused, match="training snapshot"):
        training.split(snaps, np.ones(4, dtype=bool), horizon_days=60, grace_days=14, valid_count=3)


def test_counts_are_named_in_the_refusal() -> None:
    _, y, _, snapshots = business(per_snapshot=50)
    s = training.split(
        snapshots, np.ones(len(y), dtype=bool), horizon_days=60, grace_days=14, valid_count=3
    )
    with pytest.raises(TrainingRefused) as caught:
        training.check_counts(y, s, min_churns=10_000)
    train_pos = int(y[s.train].sum())
    assert (
        f"{train_pos} churn(s) among {int(s.train.sum())} training examples" in caught.value.detail
    )
    zero = np.zeros_like(y)
    with pytest.raises(TrainingRefused, match=r"0 churn\(s\) among"):
        training.check_counts(zero, s, min_churns=1)


Trained = tuple[training.Trained, np.ndarray, np.ndarray, np.ndarray, list[datetime]]


@pytest.fixture(scope="module")
def trained() -> Trained:
    X, y, p, snapshots = business()
    result = training.train(
        X,
        y,
        features=FEATURES,
        snapshots=snapshots,
        matured=np.ones(len(y), dtype=bool),
        horizon_days=60,
        grace_days=14,
        valid_count=3,
        min_churns=50,
        threshold=0.25,
    )
    return result, X, y, p, snapshots


def test_models_side_by_side(trained: Trained) -> None:
    result, _, y, p, _ = trained
    m = result.metrics
    valid = result.split.valid
    best = M.roc_auc(y[valid], p[valid])  # the true probabilities: no model can beat it much
    assert m["lightgbm"]["roc_auc"] > 0.75 and m["lightgbm"]["roc_auc"] <= best + 0.02
    assert m["logistic_regression"]["roc_auc"] > 0.75
    assert m["health_score"]["roc_auc"] < m["lightgbm"]["roc_auc"]
    assert m["lightgbm"]["examples"] == int(valid.sum())
    # The signal carries the model, the noise does not.
    importance = m["importance"]
    assert importance["signal"] > 0.5 and importance["noise"] < importance["signal"] / 4


def test_probabilities_are_calibrated(trained: Trained) -> None:
    result, X, y, p, _ = trained
    valid = result.split.valid
    raw = result.booster.predict(X[valid], raw_score=True)
    predicted = training.calibrated(np.asarray(raw, dtype=np.float64), result.calibration)
    # Overall: the mean probability matches the churn rate.
    assert predicted.mean() == pytest.approx(y[valid].mean(), abs=0.015)
    # Per bin with enough examples: predicted within 0.06 of what happened.
    for row in result.metrics["lightgbm"]["calibration"]:
        if row["count"] >= 200:
            assert abs(row["predicted"] - row["observed"]) < 0.06, row
    # And close to the true probabilities that generated the data.
    assert np.mean(np.abs(predicted - p[valid])) < 0.05
    assert result.metrics["lightgbm"]["brier"] < M.brier(y[valid], np.full(valid.sum(), y.mean()))


def test_drift_psi() -> None:
    rng = np.random.default_rng(1)
    before = rng.normal(size=(5000, 2))
    ref = training.reference(before, ["a", "b"])
    same = training.psi(rng.normal(size=(5000, 2)), ["a", "b"], ref)
    assert same["a"] < 0.02 and same["b"] < 0.02
    shifted = np.column_stack([rng.normal(loc=1.0, size=5000), rng.normal(size=5000)])
    moved = training.psi(shifted, ["a", "b"], ref)
    assert moved["a"] > training.PSI_FLAG and moved["b"] < 0.02
    # Missing values are a bin of their own: a feature that stops arriving drifts.
    gone = np.column_stack([np.full(5000, np.nan), rng.normal(size=5000)])
    assert training.psi(gone, ["a", "b"], ref)["a"] > training.PSI_FLAG


def test_fingerprint_follows_the_data() -> None:
    X, y, _, snapshots = business(per_snapshot=20)
    keys = [f"{i}:{s:%Y%m%d}" for i, s in enumerate(snapshots)]
    first = training.fingerprint(X, y, keys)
    assert first == training.fingerprint(X.copy(), y.copy(), list(keys))
    y2 = y.copy()
    y2[0] = 1 - y2[0]
    assert training.fingerprint(X, y2, keys) != first
