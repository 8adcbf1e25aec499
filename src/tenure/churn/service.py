"""Churn: training and the model registry, predictions with their explanations, outcomes
and live accuracy, drift. Models are LightGBM text (never a pickle) checked against their
checksum before use."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
from sqlalchemy.orm import Session

from tenure.accounts import service as accounts_service
from tenure.auth import service as auth_service
from tenure.churn import explain, labels, training
from tenure.churn import features as F
from tenure.churn import repository as repo
from tenure.churn.dataset import (
    BEFORE,
    Dataset,
    build_dataset,
    data_end,
    monthly_snapshots,
    snapshot_features,
)
from tenure.churn.dataset import setup as dataset_setup
from tenure.churn.metrics import roc_auc
from tenure.churn.models import ChurnModel, ChurnPrediction
from tenure.churn.training import TrainingRefused
from tenure.health import service as health_service
from tenure.hub import service as hub_service
from tenure.hub.events import ChurnRiskChanged, DomainEvent
from tenure.ingest import service as ingest_service
from tenure.ingest.catalogue import MetricCatalogue, load_catalogue
from tenure.kit.actor import Actor
from tenure.kit.errors import Conflict, InvalidInput, NotFound, TenureError

DEFAULT_BANDS = (0.10, 0.25, 0.50)
SMALL_BATCH = 1000
LEVELS = ("low", "medium", "high", "critical")
# A first snapshot needs a full 90-day usage window behind it.
WARM_UP = timedelta(days=90)
Promote = Literal["auto", "always", "never"]

__all__ = ["Conflict", "InvalidInput", "NotFound", "TrainingRefused"]


class NoActiveModel(TenureError):
    status = 409
    title = "No active churn model"
    type_slug = "no-active-model"


class ModelUnusable(TenureError):
    """A stored model cannot be used (altered text, unreadable by LightGBM)."""

    status = 503
    title = "Churn model unusable"
    type_slug = "model-unusable"


# Models.


@dataclass
class Loaded:
    model_id: uuid.UUID
    version: int
    booster: lgb.Booster
    features: list[str]
    calibration: dict[str, Any]
    codes: dict[str, list[str]]
    reference: dict[str, Any]
    horizon_days: int


_LOADED: dict[tuple[uuid.UUID, str], Loaded] = {}


def load(model: ChurnModel) -> Loaded:
    """The model ready to predict; refuses a row whose text does not match its checksum or
    that LightGBM cannot read, naming the version. Cached per model and checksum."""
    text = model.model_text or ""
    digest = hashlib.sha256(text.encode()).hexdigest()
    key = (model.id, digest)
    if key in _LOADED:
        return _LOADED[key]
    if digest != model.model_sha256:
        raise ModelUnusable(
            f"churn model v{model.version} is corrupted: its stored text does not match its "
            "checksum; activate another version or train a new one",
            version=model.version,
        )
    try:
        booster = lgb.Booster(model_str=text)
    except (lgb.basic.LightGBMError, ValueError) as exc:
        raise ModelUnusable(
            f"churn model v{model.version} cannot be read by LightGBM ({exc}); activate "
            "another version or train a new one",
            version=model.version,
        ) from None
    if booster.feature_name() != list(model.features):
        raise ModelUnusable(
            f"churn model v{model.version} does not have the features its record lists",
            version=model.version,
        )
    loaded = Loaded(
        model_id=model.id,
        version=model.version,
        booster=booster,
        features=list(model.features),
        calibration=dict(model.calibration),
        codes={k: list(v) for k, v in model.codes.items()},
        reference=dict(model.reference),
        horizon_days=int(model.training.get("horizon_days", 60)),
    )
    if len(_LOADED) > 8:
        _LOADED.clear()
    _LOADED[key] = loaded
    return loaded


def models(session: Session) -> list[ChurnModel]:
    """Every model, newest first."""
    return repo.models(session)


def get_model(session: Session, version: int) -> ChurnModel:
    model = repo.by_version(session, version)
    if model is None:
        raise NotFound(f"no churn model v{version}")
    return model


def model_by_id(session: Session, model_id: uuid.UUID) -> ChurnModel:
    model = repo.by_id(session, model_id)
    if model is None:
        raise NotFound(f"no churn model {model_id}")
    return model


def active_model(session: Session) -> ChurnModel | None:
    return repo.active(session)


def activate(session: Session, version: int, *, actor: Actor, now: datetime) -> ChurnModel:
    """Make this version the one predictions use (it must load); the previous one retires."""
    model = get_model(session, version)
    load(model)
    _make_active(session, model, now=now)
    auth_service.audit(
        session,
        actor,
        "churn.model.activate",
        now=now,
        target_type="churn_model",
        target_id=str(version),
    )
    return model


def _make_active(session: Session, model: ChurnModel, *, now: datetime) -> None:
    repo.retire_active(session, except_id=model.id)
    model.status = "active"
    model.activated_at = now
    session.flush()


# Training.


@dataclass
class TrainReport:
    model: ChurnModel
    promoted: bool
    note: str
    previous: int | None
    comparison: dict[str, Any] | None
    seconds: dict[str, float] = field(default_factory=dict)


def training_snapshots(
    session: Session,
    *,
    until: datetime,
    horizon_days: int,
    grace_days: int,
    since: datetime | None = None,
) -> list[datetime]:
    """Monthly snapshots from 90 days into the data (or `since`) to the last one whose
    label has matured by `until`."""
    first = ingest_service.first_usage_day(session)
    if first is None:
        raise TrainingRefused("no usage data: import events before training a churn model")
    start = since or datetime.combine(first, dtime.min, tzinfo=UTC) + WARM_UP
    last = until - timedelta(days=horizon_days + grace_days)
    return monthly_snapshots(start, last) if start <= last else []


def train_model(
    session: Session,
    *,
    now: datetime,
    actor: Actor,
    horizon_days: int = 60,
    grace_days: int = 14,
    since: datetime | None = None,
    until: datetime | None = None,
    valid_count: int = 3,
    min_churns: int = 50,
    threshold: float = 0.25,
    promote: Promote = "auto",
    catalogue: MetricCatalogue | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TrainReport:
    """Build the point-in-time dataset, train LightGBM and the baselines on an out-of-time
    split, store the model, and make it active when `promote` says so ("auto": the first
    model, or one not worse on validation than the active model)."""
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    catalogue = catalogue or load_catalogue()
    until = min(until or data_end(session), now)
    snaps = training_snapshots(
        session, until=until, horizon_days=horizon_days, grace_days=grace_days, since=since
    )
    if len(snaps) < 3:
        raise TrainingRefused(
            f"found {len(snaps)} monthly snapshot(s) with a matured {horizon_days}-day label "
            f"(data until {until:%Y-%m-%d}); at least 3 are needed: more history, or a "
            "shorter horizon"
        )
    ds = build_dataset(
        session,
        snapshots=snaps,
        horizon_days=horizon_days,
        grace_days=grace_days,
        catalogue=catalogue,
        until=until,
        progress=progress,
    )
    seconds["dataset"] = time.perf_counter() - clock
    clock = time.perf_counter()
    trained = training.train(
        ds.X,
        ds.y,
        features=ds.features,
        snapshots=ds.snapshots,
        matured=ds.matured,
        horizon_days=horizon_days,
        grace_days=grace_days,
        valid_count=valid_count,
        min_churns=min_churns,
        threshold=threshold,
    )
    seconds["train"] = time.perf_counter() - clock
    s = trained.split
    text = trained.booster.model_to_string()
    keys = [f"{a.hex}:{t:%Y%m%d}" for a, t in zip(ds.account_ids, ds.snapshots, strict=True)]

    def part(mask: npt.NDArray[np.bool_], snaps_: Sequence[datetime]) -> dict[str, Any]:
        return {
            "from": snaps_[0].isoformat(),
            "to": snaps_[-1].isoformat(),
            "snapshots": len(snaps_),
            "examples": int(mask.sum()),
            "churns": int(ds.y[mask].sum()),
        }

    model = ChurnModel(
        version=repo.next_version(session),
        status="candidate",
        created_at=now,
        created_by=actor.label,
        model_text=text,
        model_sha256=hashlib.sha256(text.encode()).hexdigest(),
        features=list(ds.features),
        codes={k: list(v) for k, v in ds.codes.items()},
        calibration=trained.calibration,
        params=trained.params,
        metrics=trained.metrics,
        training={
            "horizon_days": horizon_days,
            "grace_days": grace_days,
            "until": until.isoformat(),
            "threshold": threshold,
            "train": part(s.train, s.train_snapshots),
            "calibration": part(s.tune, s.tune_snapshots),
            "validation": part(s.valid, s.valid_snapshots),
            "accounts": len(set(ds.account_ids)),
            "seconds": {k: round(v, 2) for k, v in seconds.items()},
        },
        fingerprint=training.fingerprint(ds.X, ds.y, keys),
        reference=trained.reference,
        drift=None,
        note="",
    )
    session.add(model)
    session.flush()
    current = repo.active(session)
    promoted, note, comparison = _decide(model, current, trained, ds, promote)
    model.note = note
    if promoted:
        _make_active(session, model, now=now)
    auth_service.audit(
        session,
        actor,
        "churn.model.train",
        now=now,
        target_type="churn_model",
        target_id=str(model.version),
        details={"promoted": promoted, "note": note},
    )
    return TrainReport(
        model=model,
        promoted=promoted,
        note=note,
        previous=current.version if current is not None else None,
        comparison=comparison,
        seconds=seconds,
    )


def _decide(
    model: ChurnModel,
    current: ChurnModel | None,
    trained: training.Trained,
    ds: Dataset,
    promote: Promote,
) -> tuple[bool, str, dict[str, Any] | None]:
    if promote == "never":
        return False, "kept as a candidate (not activated on request)", None
    if current is None:
        return True, "activated: the first model", None
    if promote == "always":
        return True, f"activated on request (replacing v{current.version})", None
    try:
        old = load(current)
    except ModelUnusable as exc:
        return (
            False,
            f"not activated: the active model v{current.version} cannot be read to compare "
            f"({exc.detail}); activate v{model.version} by hand",
            None,
        )
    valid = trained.split.valid
    X = align(ds.X[valid], ds.features, ds.codes, old)
    raw_old = np.asarray(old.booster.predict(X, raw_score=True), dtype=np.float64)
    p_old = training.calibrated(raw_old, old.calibration)
    auc_old = roc_auc(ds.y[valid], p_old)
    raw_new = np.asarray(trained.booster.predict(ds.X[valid], raw_score=True), dtype=np.float64)
    auc_new = roc_auc(ds.y[valid], training.calibrated(raw_new, trained.calibration))
    comparison = {"roc_auc_new": auc_new, "roc_auc_active": auc_old, "active": current.version}
    if np.isnan(auc_old) or auc_new >= auc_old:
        return (
            True,
            f"activated: validation ROC AUC {auc_new:.4f} is not worse than "
            f"{auc_old:.4f} of v{current.version} on the same examples",
            comparison,
        )
    return (
        False,
        f"not activated: validation ROC AUC {auc_new:.4f} is worse than {auc_old:.4f} of "
        f"v{current.version} on the same examples",
        comparison,
    )


def align(
    X: npt.NDArray[np.float64],
    features: Sequence[str],
    codes: dict[str, list[str]],
    model: Loaded,
) -> npt.NDArray[np.float64]:
    """The columns `model` was trained on, from a matrix of `features` (categorical codes
    translated to the model's; a feature it lacks is missing)."""
    index = {name: j for j, name in enumerate(features)}
    out = np.full((X.shape[0], len(model.features)), np.nan)
    for k, name in enumerate(model.features):
        j = index.get(name)
        if j is None:
            continue
        column = X[:, j]
        if name in codes and name in model.codes:
            theirs = {v: i for i, v in enumerate(model.codes[name])}
            mapping = np.array(
                [theirs.get(v, len(model.codes[name]) + i) for i, v in enumerate(codes[name])],
                dtype=np.float64,
            )
            valid = np.isfinite(column)
            mapped = np.full(column.shape, np.nan)
            mapped[valid] = mapping[column[valid].astype(np.int64)] if mapping.size else np.nan
            column = mapped
        out[:, k] = column
    return out


# Prediction.


def feature_catalogue(session: Session) -> list[F.Feature]:
    """The features a model trained now would use (the health components of the scorecards
    in use included)."""
    return dataset_setup(session).features


def bands(p: npt.NDArray[np.float64], edges: Sequence[float] = DEFAULT_BANDS) -> list[str]:
    """low < edges[0] <= medium < edges[1] <= high < edges[2] <= critical."""
    index = np.searchsorted(np.asarray(edges, dtype=np.float64), p, side="right")
    return [LEVELS[i] for i in index.tolist()]


@dataclass
class PredictResult:
    model_version: int
    as_of: datetime
    accounts: int = 0
    flagged: int = 0
    announced: int = 0
    drift_flagged: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def snapshot_of(now: datetime) -> datetime:
    """Predictions are made as of midnight UTC of the day, as training snapshots are."""
    return datetime.combine(now.astimezone(UTC).date(), dtime.min, tzinfo=UTC)


def predict(
    session: Session,
    *,
    now: datetime,
    account_ids: Sequence[uuid.UUID] | None = None,
    catalogue: MetricCatalogue | None = None,
    edges: Sequence[float] = DEFAULT_BANDS,
    threshold: float = 0.25,
    publish: bool = True,
) -> PredictResult:
    """Predict with the active model as of today (features from before midnight UTC),
    store every prediction with its top factors, update the accounts' latest figures,
    announce risk level changes; for the whole portfolio also measure drift."""
    model = repo.active(session)
    if model is None:
        raise NoActiveModel("no active churn model: train one with 'tenure churn train'")
    loaded = load(model)
    snapshot = snapshot_of(now)
    result = PredictResult(model_version=model.version, as_of=snapshot)
    clock = time.perf_counter()
    X_all, names, ids, codes = features_now(
        session, snapshot=snapshot, account_ids=account_ids, catalogue=catalogue, model=loaded
    )
    result.seconds["features"] = time.perf_counter() - clock
    result.accounts = len(ids)
    if not ids:
        return result
    clock = time.perf_counter()
    X = _model_matrix(X_all, names, loaded)
    # OpenMP's start-up costs more than a few rows take on one thread (12 ms vs 1 ms).
    small = len(ids) < SMALL_BATCH
    threads = 1 if small else int(loaded.booster.params.get("num_threads", 2))
    raw = loaded.booster.predict(X, raw_score=True, num_threads=threads)
    p = training.calibrated(np.asarray(raw, dtype=np.float64), loaded.calibration)
    # SHAP contributions cost ~100 times the score: a portfolio run explains the accounts
    # at medium risk or above now, the others when their prediction is first read.
    explained = np.ones(len(ids), dtype=np.bool_) if small else p >= edges[0]
    # (LightGBM cannot predict zero rows: a portfolio all at low risk explains nobody now.)
    contributions = (
        np.asarray(
            loaded.booster.predict(X[explained], pred_contrib=True, num_threads=threads),
            dtype=np.float64,
        )
        if explained.any()
        else np.empty((0, X.shape[1] + 1))
    )
    mrr = np.nan_to_num(X_all[:, names.index("mrr")]) * 100.0
    level = bands(p, edges)
    result.seconds["predict"] = time.perf_counter() - clock
    clock = time.perf_counter()
    factor_rows: list[list[dict[str, Any]]] = [[] for _ in ids]
    made = explain.factors(
        X[explained],
        contributions,
        features=loaded.features,
        reference=loaded.reference,
        codes=codes,
    )
    for i, factors_of in zip(np.flatnonzero(explained).tolist(), made, strict=True):
        factor_rows[i] = factors_of
    result.seconds["explain"] = time.perf_counter() - clock
    clock = time.perf_counter()
    rows: list[dict[str, Any]] = []
    latest: list[dict[str, Any]] = []
    events: list[tuple[DomainEvent, uuid.UUID | None]] = []
    prior = accounts_service.churn_state(session, ids)
    probabilities = p.tolist()
    for i, account_id in enumerate(ids):
        prob = round(probabilities[i], 6)
        at_risk = round(float(prob * mrr[i]))
        rows.append(
            {
                "id": uuid.uuid4(),
                "account_id": account_id,
                "model_id": model.id,
                "as_of": snapshot,
                "horizon_days": loaded.horizon_days,
                "probability": prob,
                "risk_level": level[i],
                "mrr_cents": round(float(mrr[i])),
                "mrr_at_risk_cents": at_risk,
                "factors": factor_rows[i],
                "outcome": None,
                "outcome_at": None,
            }
        )
        before_as_of, before_level, before_p = prior.get(account_id, (None, None, None))
        if before_as_of is not None and before_as_of > snapshot:
            continue
        latest.append(
            {
                "id": account_id,
                "churn_probability": prob,
                "churn_risk": level[i],
                "churn_mrr_at_risk_cents": at_risk,
                "churn_as_of": snapshot,
            }
        )
        if publish and level[i] != before_level:
            events.append(
                (
                    ChurnRiskChanged(
                        account_id=account_id,
                        as_of=snapshot,
                        probability=prob,
                        previous_probability=before_p,
                        risk_level=level[i],
                        previous_risk_level=before_level,
                        model_version=f"v{model.version}",
                    ),
                    account_id,
                )
            )
    repo.replace_predictions(session, rows, as_of=snapshot, everyone=account_ids is None)
    accounts_service.set_churn(session, latest)
    hub_service.publish_many(session, events, now=now)
    result.flagged = int(np.sum(p >= threshold))
    result.announced = len(events)
    if account_ids is None:
        drift = training.psi(X, loaded.features, loaded.reference)
        flagged = sorted(k for k, v in drift.items() if v > training.PSI_FLAG)
        model.drift = {
            "as_of": snapshot.isoformat(),
            "accounts": len(ids),
            "psi": drift,
            "flagged": flagged,
            "threshold": training.PSI_FLAG,
        }
        result.drift_flagged = flagged
    session.flush()
    result.seconds["write"] = time.perf_counter() - clock
    return result


def features_now(
    session: Session,
    *,
    snapshot: datetime,
    account_ids: Sequence[uuid.UUID] | None,
    catalogue: MetricCatalogue | None,
    model: Loaded,
) -> tuple[npt.NDArray[np.float64], list[str], list[uuid.UUID], dict[str, list[str]]]:
    """The full feature matrix at a snapshot, its column names, the accounts' ids and the
    category codes (the model's own, extended by values it never saw)."""
    ready = dataset_setup(session, catalogue)
    as_of = snapshot - BEFORE
    plans = F.Codes(list(model.codes.get("plan", [])))
    categories = F.Codes(list(model.codes.get("category", [])))
    changes = accounts_service.subscription_changes_between(
        session, since=labels.EPOCH, until=snapshot, account_ids=account_ids
    )
    # Kept when learned, as the health rescore does: the next prediction reuses it.
    baseline = health_service.baseline_for(
        session, as_of=as_of, catalogue=ready.catalogue, store=True
    )
    X, ids = snapshot_features(
        session,
        as_of=as_of,
        catalogue=ready.catalogue,
        cards=ready.cards,
        components=ready.components,
        features=ready.features,
        changes=changes,
        plans=plans,
        categories=categories,
        account_ids=account_ids,
        baseline=baseline,
    )
    return (
        X,
        [f.name for f in ready.features],
        ids,
        {
            "plan": plans.values,
            "category": categories.values,
        },
    )


def predict_account(
    session: Session,
    account_id: uuid.UUID,
    *,
    now: datetime,
    catalogue: MetricCatalogue | None = None,
    edges: Sequence[float] = DEFAULT_BANDS,
    threshold: float = 0.25,
) -> ChurnPrediction:
    """A fresh prediction for one account (stored), or a clear error why there is none."""
    account = accounts_service.get_account(session, account_id)
    result = predict(
        session,
        now=now,
        account_ids=[account.id],
        catalogue=catalogue,
        edges=edges,
        threshold=threshold,
    )
    if result.accounts == 0:
        raise Conflict(f"account {account_id} has churned or was not alive: nothing to predict")
    prediction = repo.latest_prediction(session, account_id)
    assert prediction is not None
    return prediction


def latest_prediction(session: Session, account_id: uuid.UUID) -> ChurnPrediction | None:
    """The account's latest prediction, its factors computed now if the portfolio run left
    them for later (kept)."""
    row = repo.latest_prediction(session, account_id)
    if row is not None and not row.factors:
        explain_later(session, row)
    return row


def explain_later(session: Session, row: ChurnPrediction) -> None:
    """Compute and keep a stored prediction's factors: the features at its snapshot (they
    cannot have changed: they use data before it) through its own model."""
    loaded = load(model_by_id(session, row.model_id))
    X_all, names, ids, codes = features_now(
        session, snapshot=row.as_of, account_ids=[row.account_id], catalogue=None, model=loaded
    )
    if not ids:
        return
    X = _model_matrix(X_all, names, loaded)
    contributions = loaded.booster.predict(X, pred_contrib=True, num_threads=1)
    row.factors = explain.factors(
        X,
        np.asarray(contributions, dtype=np.float64),
        features=loaded.features,
        reference=loaded.reference,
        codes=codes,
    )[0]
    session.flush()


def _model_matrix(
    X_all: npt.NDArray[np.float64], names: Sequence[str], loaded: Loaded
) -> npt.NDArray[np.float64]:
    """The model's columns from the full feature matrix (missing where it lacks one)."""
    index = {name: j for j, name in enumerate(names)}
    X = np.full((X_all.shape[0], len(loaded.features)), np.nan)
    for k, name in enumerate(loaded.features):
        if name in index:
            X[:, k] = X_all[:, index[name]]
    return X


def prediction_history(
    session: Session, account_id: uuid.UUID, *, limit: int = 90
) -> list[ChurnPrediction]:
    return repo.prediction_history(session, account_id, limit=limit)


# Outcomes and live accuracy.


def mature_outcomes(session: Session, *, now: datetime, grace_days: int = 14) -> int:
    """Record the outcome of every prediction whose horizon (and grace period) has passed:
    1 when the account churned within the horizon after the prediction, else 0."""
    grace = timedelta(days=grace_days)
    rows = repo.pending(session, as_of_before=now - grace)
    due = [r for r in rows if r[2] + timedelta(days=r[3]) + grace <= now]
    if not due:
        return 0
    churned: dict[uuid.UUID, list[datetime]] = {}
    for account_id, at in labels.churn_events(session, until=now, grace=grace):
        churned.setdefault(account_id, []).append(at)
    updates = []
    for prediction_id, account_id, as_of, horizon in due:
        end = as_of + timedelta(days=horizon)
        hit = any(as_of < at <= end for at in churned.get(account_id, ()))
        updates.append({"id": prediction_id, "outcome": int(hit), "outcome_at": now})
    repo.set_outcomes(session, updates)
    return len(updates)


def live_accuracy(session: Session, model: ChurnModel) -> dict[str, Any]:
    """The validation figures' live counterpart over this model's matured predictions."""
    pairs = repo.matured(session, model.id)
    threshold = float(model.training.get("threshold", 0.25))
    if not pairs:
        return {"examples": 0, "churns": 0}
    p = np.array([pair[0] for pair in pairs])
    y = np.array([pair[1] for pair in pairs], dtype=np.int64)
    return training.evaluate(y, p, threshold=threshold)


def prediction_counts(session: Session) -> dict[uuid.UUID, tuple[int, int]]:
    """model id -> (predictions made, of which matured)."""
    return repo.counts_by_model(session)


def at_risk(
    session: Session,
    *,
    levels: Sequence[str] = (),
    owner_id: uuid.UUID | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Any], int]:
    """Accounts by MRR at risk, largest first (levels among low/medium/high/critical)."""
    unknown = [level for level in levels if level not in LEVELS]
    if unknown:
        raise InvalidInput(
            f"unknown churn risk level {unknown[0]!r} (choose {', '.join(LEVELS)})",
            field="risk",
        )
    return accounts_service.at_risk(
        session, levels=levels, owner_id=owner_id, limit=limit, offset=offset
    )
