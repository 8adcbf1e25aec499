"""Point-in-time training examples: (account, snapshot) rows whose features come only from
data before the snapshot, labelled with churn_events within the horizon."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import numpy.typing as npt
from sqlalchemy.orm import Session

from tenure.accounts import service as accounts_service
from tenure.churn import features as F
from tenure.churn import labels as L
from tenure.config import get_settings
from tenure.health import service as health_service
from tenure.health.baseline import Baseline
from tenure.health.engine import FLAT
from tenure.health.loader import AccountInfo
from tenure.ingest import service as ingest_service
from tenure.ingest.catalogue import MetricCatalogue, load_catalogue
from tenure.kit.keys import key_of
from tenure.support import service as support_service

# Features are computed as of the instant before the snapshot: usage is kept per day, and
# the day of a midnight snapshot is after it.
BEFORE = timedelta(microseconds=1)


@dataclass
class Dataset:
    X: npt.NDArray[np.float64]
    features: list[str]
    y: npt.NDArray[np.int64]
    account_ids: list[uuid.UUID]
    snapshots: list[datetime]
    matured: npt.NDArray[np.bool_]
    until: datetime
    horizon_days: int
    grace_days: int
    catalogue: list[F.Feature] = field(default_factory=list)
    codes: dict[str, list[str]] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.X.shape[0])


def monthly_snapshots(start: date | datetime, end: date | datetime, day: int = 1) -> list[datetime]:
    """Midnight UTC on `day` of each month, from the first such date >= start to <= end."""
    first = start.date() if isinstance(start, datetime) else start
    last = end.date() if isinstance(end, datetime) else end
    out: list[datetime] = []
    y, m = first.year, first.month
    while True:
        d = date(y, m, day)
        if d > last:
            return out
        if d >= first:
            out.append(datetime.combine(d, time.min, tzinfo=UTC))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)


def data_end(session: Session) -> datetime:
    """Where the data ends: the end of the last day with usage (now if there is none)."""
    last = ingest_service.last_usage_day(session)
    if last is None:
        return datetime.now(UTC)
    return datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC)


def component_keys(cards: Sequence[health_service.Card]) -> list[str]:
    keys: list[str] = []
    for card in cards:
        for component in card.config.components:
            if component.key not in keys:
                keys.append(component.key)
    return keys


@dataclass(frozen=True)
class Setup:
    """What every feature computation needs: the metric catalogue, the active scorecards,
    their components and the feature catalogue they make."""

    catalogue: MetricCatalogue
    cards: list[health_service.Card]
    components: list[str]
    features: list[F.Feature]


def setup(session: Session, catalogue: MetricCatalogue | None = None) -> Setup:
    cards = list(health_service.active_cards(session))
    components = component_keys(cards)
    return Setup(catalogue or load_catalogue(), cards, components, F.catalogue(components))


def build_dataset(
    session: Session,
    *,
    snapshots: Sequence[datetime],
    horizon_days: int = 60,
    grace_days: int = 14,
    catalogue: MetricCatalogue | None = None,
    until: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Dataset:
    """Rows for the accounts alive at each snapshot (and not in a churned state), features
    from before it (stores nothing), labels from churn_events known by `until` (default:
    the data's end); a label is matured when snapshot + horizon + grace <= until."""
    ready = setup(session, catalogue)
    catalogue, cards, components, feature_list = (
        ready.catalogue,
        ready.cards,
        ready.components,
        ready.features,
    )
    until = until or data_end(session)
    horizon, grace = timedelta(days=horizon_days), timedelta(days=grace_days)
    plans, categories = F.Codes([]), F.Codes([])

    changes = accounts_service.subscription_changes_between(session, since=L.EPOCH, until=until)
    marked = [(row[0], row[4]) for row in accounts_service.lifetimes(session) if row[4]]
    events = L.churns_from_changes(
        ((a, k, at) for a, k, _, _, at in changes), marked, until=until, grace=grace
    )

    ordered = sorted(snapshots)
    history = (
        health_service.baseline_history(
            session, first=ordered[0] - BEFORE, last=ordered[-1] - BEFORE
        )
        if ordered
        else None
    )
    firsts = load_firsts(session, catalogue)
    blocks: list[npt.NDArray[np.float64]] = []
    ys: list[npt.NDArray[np.int64]] = []
    ids: list[uuid.UUID] = []
    rows_at: list[datetime] = []
    matured: list[npt.NDArray[np.bool_]] = []
    for snapshot in sorted(snapshots):
        as_of = snapshot - BEFORE
        before = [c for c in changes if c[4] < snapshot]
        after = [c for c in changes if c[4] >= snapshot]
        X, row_ids = snapshot_features(
            session,
            as_of=as_of,
            catalogue=catalogue,
            cards=cards,
            components=components,
            features=feature_list,
            changes=before,
            later=after,
            history=history,
            firsts=firsts,
            plans=plans,
            categories=categories,
        )
        blocks.append(X)
        ids += row_ids
        rows_at += [snapshot] * len(row_ids)
        ys.append(L.labels(events, row_ids, snapshot, horizon))
        matured.append(np.full(len(row_ids), snapshot + horizon + grace <= until))
        if progress is not None:
            progress(len(matured), len(snapshots))
    width = len(feature_list)
    return Dataset(
        X=np.vstack(blocks) if blocks else np.empty((0, width)),
        features=[f.name for f in feature_list],
        y=np.concatenate(ys) if ys else np.empty(0, dtype=np.int64),
        account_ids=ids,
        snapshots=rows_at,
        matured=np.concatenate(matured) if matured else np.empty(0, dtype=bool),
        until=until,
        horizon_days=horizon_days,
        grace_days=grace_days,
        catalogue=feature_list,
        codes={"plan": plans.values, "category": categories.values},
    )


def snapshot_features(
    session: Session,
    *,
    as_of: datetime,
    catalogue: MetricCatalogue,
    cards: Sequence[health_service.Card],
    components: Sequence[str],
    features: Sequence[F.Feature],
    changes: Sequence[tuple[uuid.UUID, str, int, int, datetime]],
    plans: F.Codes,
    categories: F.Codes,
    account_ids: Sequence[uuid.UUID] | None = None,
    baseline: Baseline | None = None,
    later: Sequence[tuple[uuid.UUID, str, int, int, datetime]] = (),
    history: health_service.BaselineHistory | None = None,
    firsts: Firsts | None = None,
) -> tuple[npt.NDArray[np.float64], list[uuid.UUID]]:
    """The feature matrix (catalogue order) of the accounts alive and not churned at
    `as_of` (or of those of `account_ids`), with their ids; `changes` are the subscription
    changes before `as_of`. The baseline is learned at `as_of` unless given."""
    if baseline is None:
        # Learned at the snapshot from the history before it, never stored.
        baseline = health_service.learn_baseline(
            session, as_of=as_of, catalogue=catalogue, store=False, history=history
        )
    scored = health_service.compute(
        session,
        as_of=as_of,
        account_ids=account_ids,
        cards=cards,
        catalogue=catalogue,
        baseline=baseline,
    )
    frame, info = scored.frame, scored.info
    gone = L.churned_state(((a, k, at) for a, k, _, _, at in changes), at=as_of)
    keep = np.array([a not in gone for a in frame.account_ids], dtype=np.bool_)
    ids = [a for a, k in zip(frame.account_ids, keep.tolist(), strict=True) if k]
    n_all = frame.n
    index = {a: i for i, a in enumerate(frame.account_ids)}
    cols: dict[str, F.Floats] = {}

    usage = {
        f"{kind}_{w}": np.zeros(n_all)
        for w in F.USAGE_WINDOWS
        for kind in ("events", "sessions", "active_days")
    }
    for a, w, days, n_events, n_sessions in ingest_service.usage_windows(
        session,
        day=as_of.astimezone(UTC).date(),
        windows=F.USAGE_WINDOWS,
        account_ids=frame.account_ids,
    ):
        i = index.get(a)
        if i is not None:
            usage[f"active_days_{w}"][i] = days
            usage[f"events_{w}"][i] = n_events
            usage[f"sessions_{w}"][i] = n_sessions
    cols.update(usage)
    cols.update(F.derived(usage, frame.expected["active_days"]))

    cols.update(_tickets(session, as_of=as_of, index=index, n=n_all, account_ids=account_ids))

    v = frame.values
    for name in (
        "activity_trend",
        "sessions_vs_last_year",
        "feature_breadth_30",
        "feature_breadth_90",
        "days_since_seen",
        "mrr_change_90",
        "failed_payments_90",
        "downgrades_90",
        "open_tickets",
        "aging_tickets",
        "escalated_tickets",
        "support_sentiment",
        "nps",
        "csat",
        "season_ahead_churn",
    ):
        cols[name] = np.asarray(v[name], dtype=np.float64)
    cols["activity_trend_flat"] = np.asarray(v["activity_trend" + FLAT], dtype=np.float64)
    cols["latest_nps"] = frame.extras["latest_nps"]
    today = float(as_of.astimezone(UTC).date().toordinal())
    cols["latest_nps_age"] = today - frame.extras["latest_nps_day"]
    cols["tenure_days"] = info.tenure_days
    cols.update(
        _adoption(
            session,
            now=_ordinal(as_of),
            tenure=info.tenure_days,
            ids=frame.account_ids,
            catalogue=catalogue,
            firsts=firsts,
        )
    )
    cols["plan"] = plans.encode(info.plans)
    cols["category"] = categories.encode(info.categories)
    cols["mrr"] = _mrr_at(session, frame.account_ids, info, changes, later) / 100.0
    cols.update(_renewal(session, as_of, frame.account_ids, changes))

    cols["health_score"] = np.asarray(scored.score, dtype=np.float64)
    for key in components:
        cols[f"health_{key}"] = np.array(
            [float(c[key]["score"]) if key in c else np.nan for c in scored.components]
        )
    return F.matrix(cols, features, n_all)[keep], ids


TICKET_TYPES = {
    "cancellation_request": "cancellation_requests_90",
    "complaint": "complaints_90",
    "bug": "bugs_90",
}


def _tickets(
    session: Session,
    *,
    as_of: datetime,
    index: dict[uuid.UUID, int],
    n: int,
    account_ids: Sequence[uuid.UUID] | None,
) -> dict[str, F.Floats]:
    """Support interactions opened in the 30 and 90 days before the snapshot, by kind."""
    names = ["tickets_30", "tickets_90", "negative_tickets_90", *TICKET_TYPES.values()]
    out = {name: np.zeros(n) for name in names}
    for days in (30, 90):
        rows = support_service.ticket_counts(
            session, since=as_of - timedelta(days=days), until=as_of, account_ids=account_ids
        )
        for account_id, kind, count, negative in rows:
            i = index.get(account_id)
            if i is None:
                continue
            out[f"tickets_{days}"][i] += count
            if days == 90:
                out["negative_tickets_90"][i] += negative
                if kind in TICKET_TYPES:
                    out[TICKET_TYPES[kind]][i] += count
    return out


def _ordinal(at: datetime) -> float:
    """The UTC day ordinal of an instant, with the time of day as a fraction."""
    utc = at.astimezone(UTC)
    midnight = datetime.combine(utc.date(), time.min, tzinfo=UTC)
    return utc.date().toordinal() + (utc - midnight).total_seconds() / 86400.0


@dataclass
class Firsts:
    """When each account first used each key feature (day ordinals by account id as
    text), and the first day of any usage: read once for all the snapshots of a dataset."""

    by_account: dict[str, dict[str, float]]
    data_start: float


def load_firsts(
    session: Session, catalogue: MetricCatalogue, account_ids: Sequence[uuid.UUID] | None = None
) -> Firsts:
    metrics = {e: f.name for f in catalogue.key_features for e in f.events}
    out: dict[str, dict[str, float]] = {}
    for key, feature, day in ingest_service.first_days(
        session, metrics=metrics, account_ids=account_ids
    ):
        first = day if isinstance(day, date) else date.fromisoformat(str(day))
        out.setdefault(key, {})[feature] = float(first.toordinal())
    start = ingest_service.first_usage_day(session)
    return Firsts(out, float(start.toordinal()) if start else float("inf"))


def _adoption(
    session: Session,
    *,
    now: float,
    tenure: F.Floats,
    ids: Sequence[uuid.UUID],
    catalogue: MetricCatalogue,
    firsts: Firsts | None,
) -> dict[str, F.Floats]:
    if firsts is None:
        firsts = load_firsts(session, catalogue, ids)
    names = [f.name for f in catalogue.key_features]
    key = key_of(session)
    days = np.full((len(ids), len(names)), np.nan)
    for i, account_id in enumerate(ids):
        seen = firsts.by_account.get(key(account_id))
        if seen:
            days[i] = [seen.get(name, np.nan) for name in names]
    # The signup day, from the tenure (fractional days) at the instant of the snapshot.
    signup = np.floor(now - tenure)
    today = float(np.floor(now))
    return F.adoption(days, signup, today=today, data_start=firsts.data_start, n_key=len(names))


def _renewal(
    session: Session,
    as_of: datetime,
    ids: Sequence[uuid.UUID],
    changes: Sequence[tuple[uuid.UUID, str, int, int, datetime]],
) -> dict[str, F.Floats]:
    """Billing interval and days to the end of the paid term at the snapshot. The term runs
    from the latest `new` or `reactivation` change before it; the interval is the account's
    `billing_interval` trait (its current value: intervals rarely change)."""
    started: dict[uuid.UUID, datetime] = {}
    for a, kind, _, _, at in changes:  # oldest first
        if kind in ("new", "reactivation"):
            started[a] = at
    intervals = accounts_service.trait_values(session, "billing_interval", ids)
    annual = np.array([F.annual_flag(intervals.get(a)) for a in ids], dtype=np.float64)
    elapsed = np.array(
        [(as_of - started[a]).total_seconds() / 86400.0 if a in started else np.nan for a in ids],
        dtype=np.float64,
    )
    return {"annual_billing": annual, "days_to_renewal": F.days_to_renewal(elapsed, annual)}


def _mrr_at(
    session: Session,
    ids: Sequence[uuid.UUID],
    info: AccountInfo,
    changes: Sequence[tuple[uuid.UUID, str, int, int, datetime]],
    later: Sequence[tuple[uuid.UUID, str, int, int, datetime]] = (),
) -> F.Floats:
    """MRR in the reporting currency (cents, converted at the account's current rate) as it
    stood at the snapshot: after the last change before it; else before the first change
    after it (what the account paid then); else the account's recorded MRR. The recorded
    MRR is today's, so it is only right when nothing changed since: a churned account's is 0.
    """
    last: dict[uuid.UUID, int] = {}
    for a, kind, _, after, _ in changes:  # oldest first
        if kind != "failed_payment":
            last[a] = after
    for a, kind, before, _, _ in later:  # oldest first
        if kind != "failed_payment" and a not in last:
            last[a] = before
    out = np.zeros(len(ids))
    # Accounts paying nothing now (churned) have no rate of their own: the currency's.
    unpaid = [
        a for a, local in zip(ids, info.mrr_local.tolist(), strict=True) if a in last and not local
    ]
    currency = accounts_service.currencies(session, unpaid) if unpaid else {}
    # The installation's rates (TENURE_FX_RATES over the built-in table), as ingestion uses.
    fx = get_settings().fx()
    for i, (a, base, local) in enumerate(
        zip(ids, info.mrr_base.tolist(), info.mrr_local.tolist(), strict=True)
    ):
        amount = last.get(a)
        if amount is None:
            out[i] = base
        elif local > 0:
            out[i] = round(amount * base / local)
        else:
            out[i] = fx.to_base(amount, currency.get(a, "USD"))
    return out
