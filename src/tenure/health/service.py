"""Health scoring: rescoring (one account or the portfolio), history, overrides, scorecards."""

from __future__ import annotations

import time
import uuid
from bisect import bisect_right
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from tenure.accounts import service as accounts_service
from tenure.auth import service as auth_service
from tenure.health import baseline as baseline_mod
from tenure.health import repository as repo
from tenure.health.baseline import Baseline
from tenure.health.engine import Scores, rollup, score_frame
from tenure.health.explain import as_lists, sentence
from tenure.health.loader import AccountInfo, lifecycle, load_frame
from tenure.health.models import HealthOverride, HealthScore, ScorecardVersion
from tenure.health.scorecard import Scorecard, default_scorecard, parse_scorecard
from tenure.health.signals import Floats, SignalFrame
from tenure.hub import service as hub_service
from tenure.hub.events import DomainEvent, HealthChanged
from tenure.ingest import service as ingest_service
from tenure.ingest.catalogue import MetricCatalogue, load_catalogue
from tenure.kit.actor import Actor
from tenure.kit.errors import Conflict, InvalidInput, NotFound
from tenure.kit.keys import key_of

# A score moving less than this (without a change of level) is not announced.
CHANGE_THRESHOLD = 5.0
BASELINE_MAX_AGE = timedelta(days=7)
BACKLOG_BATCH = 5000


@dataclass
class Card:
    """A scorecard in use: its stored version and the validated configuration."""

    key: str
    version: int
    config: Scorecard


@dataclass
class RescoreResult:
    as_of: datetime
    accounts: int = 0
    scored: int = 0
    announced: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class Scored:
    """Everything computed for a batch of accounts, row-aligned with `frame`."""

    frame: SignalFrame
    info: AccountInfo
    score: Floats
    level: list[str | None]
    card_of: list[Card]
    components: list[dict[str, Any]]
    missing: list[list[str]]
    factors: list[list[dict[str, Any]]]
    children: Floats


# Scorecards.


def active_cards(session: Session, *, now: datetime | None = None) -> list[Card]:
    """The scorecards in use, the default last; the shipped default is saved on first use."""
    rows = repo.active_scorecards(session)
    if not rows:
        card = default_scorecard()
        row = ScorecardVersion(
            key=card.key,
            version=1,
            definition=card.model_dump(mode="json"),
            active=True,
            created_at=now or datetime.now().astimezone(),
            created_by="tenure (shipped default)",
        )
        repo.add(session, row)
        rows = [row]
    cards = [Card(r.key, r.version, parse_scorecard(r.definition)) for r in rows]
    cards.sort(key=lambda c: (c.config.default, -c.config.priority, c.key))
    return cards


def _default(cards: Sequence[Card]) -> Card:
    for card in cards:
        if card.config.default:
            return card
    return cards[-1]


def save_scorecard(
    session: Session, definition: dict[str, Any], *, actor: Actor, now: datetime
) -> Card:
    """Validate and save a scorecard as the next version of its key (a new key: version 1)."""
    config = parse_scorecard(definition)
    cards = active_cards(session, now=now)
    current = {c.key: c for c in cards}
    if config.default:
        for card in cards:
            if card.config.default and card.key != config.key:
                raise Conflict(
                    f"scorecard {card.key!r} is already the default; unset it there first"
                )
    elif config.key in current and current[config.key].config.default:
        raise Conflict("the default scorecard must stay the default (there must be one)")
    version = repo.latest_version(session, config.key) + 1
    repo.deactivate(session, config.key)
    repo.add(
        session,
        ScorecardVersion(
            key=config.key,
            version=version,
            definition=config.model_dump(mode="json"),
            active=True,
            created_at=now,
            created_by=actor.label,
        ),
    )
    auth_service.audit(
        session,
        actor,
        "scorecard.save",
        now=now,
        target_type="scorecard",
        target_id=config.key,
        details={"version": version},
    )
    return Card(config.key, version, config)


def retire_scorecard(session: Session, key: str, *, actor: Actor, now: datetime) -> None:
    cards = {c.key: c for c in active_cards(session, now=now)}
    if key not in cards:
        raise NotFound(f"no scorecard {key!r}")
    if cards[key].config.default:
        raise Conflict("the default scorecard cannot be retired; make another one the default")
    repo.deactivate(session, key)
    auth_service.audit(
        session, actor, "scorecard.retire", now=now, target_type="scorecard", target_id=key
    )


def scorecard_versions(session: Session, key: str) -> list[ScorecardVersion]:
    rows = repo.versions(session, key)
    if not rows:
        raise NotFound(f"no scorecard {key!r}")
    return rows


# Baseline.


def baseline_for(
    session: Session, *, as_of: datetime, catalogue: MetricCatalogue, store: bool = True
) -> Baseline:
    """The seasonal baseline learned at most a week before `as_of` (learned now, and kept
    when `store`, if there is none)."""
    figures = repo.baseline(
        session, on_or_before=as_of.date(), since=(as_of - BASELINE_MAX_AGE).date()
    )
    if figures is not None:
        return figures
    return learn_baseline(session, as_of=as_of, catalogue=catalogue, store=store)


BASELINE_SAMPLE = 6000


@dataclass
class BaselineHistory:
    """What learning the baseline reads, read once for many `as_of` (training snapshots):
    the sample's lifetimes, their monthly activity and churns over a span of months."""

    lifetimes: list[tuple[uuid.UUID, str | None, str, datetime, datetime | None]]
    monthly: list[tuple[uuid.UUID, str, int, int]]
    churns: list[tuple[uuid.UUID, datetime]]
    data_since: date | None


def _baseline_sample(
    session: Session,
) -> list[tuple[uuid.UUID, str | None, str, datetime, datetime | None]]:
    # Ids are random: the first ones in id order are a uniform, reproducible sample.
    lifetimes = accounts_service.lifetimes(session)
    return sorted(lifetimes, key=lambda row: row[0].hex)[:BASELINE_SAMPLE]


def baseline_history(session: Session, *, first: datetime, last: datetime) -> BaselineHistory:
    """Read once what learn_baseline needs for every `as_of` from `first` to `last`."""
    since = baseline_mod._month_starts(first.date(), baseline_mod.HISTORY_MONTHS)[0]
    lifetimes = _baseline_sample(session)
    sample = [row[0] for row in lifetimes]
    sampled = set(sample)
    monthly = ingest_service.monthly_activity(
        session, since=since, until=last.date().replace(day=1), account_ids=sample
    )
    churns = [
        (account_id, at)
        for account_id, kind, _, _, at in accounts_service.subscription_changes_between(
            session,
            since=datetime.combine(since, datetime.min.time(), tzinfo=first.tzinfo),
            until=last,
        )
        if kind == "churn" and account_id in sampled
    ]
    return BaselineHistory(lifetimes, monthly, churns, ingest_service.first_usage_day(session))


def learn_baseline(
    session: Session,
    *,
    as_of: datetime,
    catalogue: MetricCatalogue,
    store: bool = True,
    history: BaselineHistory | None = None,
) -> Baseline:
    """Learn the baseline from the history before `as_of` (a sample of up to 6,000 accounts:
    medians need no more) and keep it. `history` (from baseline_history over a span that
    covers `as_of`) saves the reads."""
    first = baseline_mod._month_starts(as_of.date(), baseline_mod.HISTORY_MONTHS)[0]
    start = datetime.combine(first, datetime.min.time(), tzinfo=as_of.tzinfo)
    until = as_of.date().replace(day=1)
    if history is None:
        history = baseline_history(session, first=as_of, last=as_of)
    # The same rows the reads of this as_of alone return: whole months in [first, until).
    low, high = first.isoformat()[:7], until.isoformat()[:7]
    monthly = [row for row in history.monthly if low <= row[1] < high]
    churns = [(a, at) for a, at in history.churns if start <= at < as_of]
    learned = baseline_mod.learn(
        history.lifetimes,
        monthly,
        churns,
        as_of=as_of,
        data_since=history.data_since,
    )
    if store:
        repo.store_baseline(session, learned)
    return learned


# Scoring.


def _assign(cards: Sequence[Card], info: AccountInfo) -> list[Card]:
    """The scorecard of each account: the first segment that matches, else the default."""
    stages = lifecycle(info).tolist()
    default = _default(cards)
    out: list[Card] = []
    for i in range(len(info.categories)):
        chosen = default
        for card in cards:
            seg = card.config.segment
            if card.config.default:
                continue
            if seg.category and info.categories[i] not in seg.category:
                continue
            if seg.plan and info.plans[i] not in seg.plan:
                continue
            if seg.lifecycle and stages[i] not in seg.lifecycle:
                continue
            chosen = card
            break
        out.append(chosen)
    return out


def compute(
    session: Session,
    *,
    as_of: datetime,
    account_ids: Collection[uuid.UUID] | None = None,
    cards: Sequence[Card] | None = None,
    catalogue: MetricCatalogue | None = None,
    baseline: Baseline | None = None,
    timings: dict[str, float] | None = None,
    keep_baseline: bool = False,
) -> Scored:
    """Score accounts as of a time (stores nothing, except a newly learned baseline when
    `keep_baseline`)."""
    clock = time.perf_counter()
    catalogue = catalogue or load_catalogue()
    cards = list(cards) if cards is not None else active_cards(session)
    if baseline is None:
        baseline = baseline_for(session, as_of=as_of, catalogue=catalogue, store=keep_baseline)
    frame, info = load_frame(
        session, as_of=as_of, catalogue=catalogue, baseline=baseline, account_ids=account_ids
    )
    if timings is not None:
        timings["read"] = time.perf_counter() - clock
    clock = time.perf_counter()
    card_of = _assign(cards, info)
    n = frame.n
    score = np.full(n, np.nan)
    level: list[str | None] = [None] * n
    components: list[dict[str, Any]] = [{} for _ in range(n)]
    missing: list[list[str]] = [[] for _ in range(n)]
    factors: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    for card in cards:
        rows = np.array([i for i in range(n) if card_of[i] is card], dtype=np.intp)
        if rows.size == 0:
            continue
        part = frame.take(rows)
        result = score_frame(card.config, part)
        score[rows] = result.score
        _explain(card, part, result, rows, info, level, components, missing, factors)
    children = _roll_up(card_of, frame, info, score, level, components, factors)
    if timings is not None:
        timings["score"] = time.perf_counter() - clock
    return Scored(frame, info, score, level, card_of, components, missing, factors, children)


def _explain(
    card: Card,
    part: SignalFrame,
    result: Scores,
    rows: Any,
    info: AccountInfo,
    level: list[str | None],
    components: list[dict[str, Any]],
    missing: list[list[str]],
    factors: list[list[dict[str, Any]]],
) -> None:
    bands = card.config.bands_ascending()
    mins = [b.min for b in bands]
    keys = [c.key for c in card.config.components]
    weights = {c.key: c.weight for c in card.config.components}
    # Rounded and turned into Python lists once: the loop below only assembles rows.
    comp_scores = np.round(np.column_stack([result.components[k] for k in keys]), 1).tolist()
    contribs = np.round(np.column_stack([result.contributions[k] for k in keys]), 2).tolist()
    shown_scores = np.round(result.score, 1).tolist()
    has_level = (result.level >= 0).tolist()
    factor_rows = result.factors.tolist()
    impact = (
        np.round(np.column_stack([result.impact[s] for s in result.signal_names]), 1)
        if result.signal_names
        else np.zeros((part.n, 0))
    )
    seasonal = card.config.seasonal
    names = result.signal_names
    cells = as_lists(part)
    impacts = impact.tolist()
    for j, row in enumerate(rows.tolist()):
        # The level of the score as stored and shown (74.96 is shown 75.0: low, not medium).
        level[row] = bands[bisect_right(mins, shown_scores[j]) - 1].level if has_level[j] else None
        comp: dict[str, Any] = {}
        gone: list[str] = []
        scores_j, contribs_j = comp_scores[j], contribs[j]
        for k, key in enumerate(keys):
            value = scores_j[k]
            if value != value:  # NaN: no data for this component
                gone.append(key)
                continue
            comp[key] = {"score": value, "weight": weights[key], "contribution": contribs_j[k]}
        components[row] = comp
        missing[row] = gone
        factors[row] = [
            {
                "signal": names[f],
                "impact": impacts[j][f],
                "text": sentence(
                    names[f], cells, j, category=info.categories[row], seasonal=seasonal
                ),
            }
            for f in factor_rows[j]
            if f >= 0
        ]


def _roll_up(
    card_of: list[Card],
    frame: SignalFrame,
    info: AccountInfo,
    score: Floats,
    level: list[str | None],
    components: list[dict[str, Any]],
    factors: list[list[dict[str, Any]]],
) -> Floats:
    """A parent's score from its children (mean or MRR-weighted, per its scorecard)."""
    n = frame.n
    children = np.zeros(n)
    row_of = {account_id: i for i, account_id in enumerate(frame.account_ids)}
    pairs = [(i, row_of[p]) for i, p in enumerate(info.parent_ids) if p is not None and p in row_of]
    if not pairs:
        return children
    child_rows = np.array([c for c, _ in pairs], dtype=np.intp)
    parent_rows = np.array([p for _, p in pairs], dtype=np.intp)
    parents = np.unique(parent_rows)
    slot = {int(p): k for k, p in enumerate(parents.tolist())}
    slots = np.array([slot[int(p)] for p in parent_rows], dtype=np.intp)
    for mode in ("mean", "mrr_weighted"):
        chosen = np.array(
            [card_of[int(p)].config.parent_rollup == mode for p in parents.tolist()], dtype=bool
        )
        if not chosen.any():
            continue
        weights = info.mrr_base[child_rows] if mode == "mrr_weighted" else None
        rolled = rollup(score[child_rows], slots, parents.size, weights)
        for k, p in enumerate(parents.tolist()):
            if not chosen[k] or np.isnan(rolled[k]):
                continue
            mine = [c for c, pp in pairs if pp == p]
            scored = [c for c in mine if not np.isnan(score[c])]
            score[p] = rolled[k]
            level[p] = card_of[p].config.level_of(round(float(rolled[k]), 1))
            children[p] = len(scored)
            at_risk = [c for c in scored if level[c] in ("high", "critical")]
            comp: dict[str, Any] = {}
            for key in {key for c in scored for key in components[c]}:
                values = [components[c][key]["score"] for c in scored if key in components[c]]
                comp[key] = {
                    "score": round(float(np.mean(values)), 1),
                    "weight": None,
                    "contribution": None,
                }
            components[p] = comp
            worst = min(scored, key=lambda c: score[c])
            text = f"{len(at_risk)} of {len(scored)} child accounts are at high or critical risk"
            factors[p] = [{"signal": "children", "impact": None, "text": text}] + [
                {**f, "text": f"Weakest child: {f['text']}"} for f in factors[worst][:1]
            ]
    return children


def _overrides(
    session: Session, ids: Sequence[uuid.UUID], *, as_of: datetime
) -> dict[uuid.UUID, HealthOverride]:
    return {o.account_id: o for o in repo.active_overrides(session, ids, at=as_of)}


def rescore(
    session: Session,
    *,
    as_of: datetime,
    now: datetime,
    account_ids: Collection[uuid.UUID] | None = None,
    catalogue: MetricCatalogue | None = None,
    publish: bool = True,
) -> RescoreResult:
    """Score accounts as of `as_of`, keep the day's score with its explanation, update the
    accounts' latest score when `as_of` is not older than it, announce real changes."""
    result = RescoreResult(as_of=as_of)
    if account_ids is not None:
        account_ids = _with_family(session, account_ids)
    scored = compute(
        session,
        as_of=as_of,
        account_ids=account_ids,
        catalogue=catalogue,
        timings=result.seconds,
        keep_baseline=True,
    )
    clock = time.perf_counter()
    frame, info = scored.frame, scored.info
    result.accounts = frame.n
    if frame.n == 0:
        return result
    ids = frame.account_ids
    n = frame.n
    day = as_of.date()
    key = key_of(session)
    keys = [key(account_id) for account_id in ids]
    before_7 = repo.scores_on(session, ids, day=day - timedelta(days=7))
    before_30 = repo.scores_on(session, ids, day=day - timedelta(days=30))
    overrides = _overrides(session, ids, as_of=as_of)
    # The day's rows as columns, each built in one pass (one dict per row only where the
    # row holds a JSON object).
    values: list[float | None] = [None if s != s else round(s, 1) for s in scored.score.tolist()]
    columns: dict[str, list[Any]] = {
        "account_id": ids,
        "scored_on": [day] * n,
        "as_of": [as_of] * n,
        "score": values,
        "risk_level": scored.level,
        "scorecard_key": [card.key for card in scored.card_of],
        "scorecard_version": [card.version for card in scored.card_of],
        "components": scored.components,
        "missing": scored.missing,
        "factors": scored.factors,
        "signals": _signal_rows(frame),
        "delta_7": [_delta(v, before_7.get(k)) for v, k in zip(values, keys, strict=True)],
        "delta_30": [_delta(v, before_30.get(k)) for v, k in zip(values, keys, strict=True)],
        "children": [int(c) for c in scored.children.tolist()],
    }
    latest: list[dict[str, Any]] = []
    events: list[tuple[DomainEvent, uuid.UUID | None]] = []
    previous_score = info.previous_score.tolist()
    for i, account_id in enumerate(ids):
        previous_as_of = info.previous_as_of[i]
        if previous_as_of is not None and previous_as_of > as_of:
            continue  # a backfill: the account's latest score is newer than this one
        value = values[i]
        card = scored.card_of[i]
        override = overrides.get(account_id)
        effective = value
        risk = scored.level[i]
        if override is not None:
            effective = override.score if override.score is not None else effective
            if override.risk_level is not None:
                risk = override.risk_level
            elif override.score is not None:
                risk = card.config.level_of(override.score)
        latest.append(
            {
                "id": account_id,
                "health_score": effective,
                "health_risk": risk,
                "health_as_of": as_of,
            }
        )
        old = previous_score[i]
        old_risk = info.previous_risk[i]
        if (
            effective is not None
            and publish
            and (risk != old_risk or old != old or abs(effective - old) >= CHANGE_THRESHOLD)
        ):
            events.append(
                (
                    HealthChanged(
                        account_id=account_id,
                        as_of=as_of,
                        score=effective,
                        previous_score=None if old != old else old,
                        risk_level=risk or "",
                        previous_risk_level=old_risk,
                        scorecard_version=f"{card.key}@{card.version}",
                    ),
                    account_id,
                )
            )
    result.seconds["explain"] = time.perf_counter() - clock
    clock = time.perf_counter()
    repo.upsert_scores(session, columns)
    accounts_service.set_health(session, latest)
    hub_service.publish_many(session, events, now=now)
    result.seconds["write"] = time.perf_counter() - clock
    result.scored = sum(1 for v in values if v is not None)
    result.announced = len(events)
    return result


def _with_family(session: Session, ids: Collection[uuid.UUID]) -> list[uuid.UUID]:
    """The accounts, their parents, and their parents' children (a child's new score
    changes its parent's)."""
    wanted = set(ids)
    parents = set(accounts_service.parents_of(session, wanted).values())
    wanted |= parents
    wanted |= set(accounts_service.children_of(session, wanted))
    return sorted(wanted)


def _signal_rows(frame: SignalFrame) -> list[dict[str, Any]]:
    """{signal: value rounded to 3 places, None without data} of every row (the measured
    values kept with the score; seasonal-variant names left out)."""
    names = [name for name in frame.values if "@" not in name]
    if not names:
        return [{} for _ in range(frame.n)]
    rounded = [
        [None if v != v else round(v, 3) for v in frame.values[name].tolist()] for name in names
    ]
    return [dict(zip(names, row, strict=True)) for row in zip(*rounded, strict=True)]


def _delta(value: float | None, before: float | None) -> float | None:
    if value is None or before is None:
        return None
    return round(value - before, 1)


def rescore_requested(
    session: Session,
    *,
    now: datetime,
    debounce: timedelta = timedelta(seconds=2),
    catalogue: MetricCatalogue | None = None,
) -> RescoreResult | None:
    """Rescore the accounts whose data changed (marked at least `debounce` ago)."""
    cutoff = now - debounce
    ids = accounts_service.rescore_requested(session, before=cutoff, limit=BACKLOG_BATCH)
    if not ids:
        return None
    result = rescore(session, as_of=now, now=now, account_ids=ids, catalogue=catalogue)
    accounts_service.clear_rescore(session, ids, requested_before=cutoff)
    return result


# Reading.


def latest(session: Session, account_id: uuid.UUID) -> HealthScore | None:
    return repo.latest_score(session, account_id)


def history(
    session: Session, account_id: uuid.UUID, *, since: datetime, until: datetime
) -> list[HealthScore]:
    if until <= since:
        raise InvalidInput("until must be after since", field="until")
    return repo.history(session, account_id, since=since.date(), until=until.date())


def active_override(
    session: Session, account_id: uuid.UUID, *, at: datetime
) -> HealthOverride | None:
    return _overrides(session, [account_id], as_of=at).get(account_id)


def distribution(session: Session) -> dict[str, Any]:
    """Accounts and MRR per risk level (latest scores), and a histogram of scores."""
    cards = active_cards(session)
    bands = _default(cards).config.bands_ascending()
    levels: dict[str, dict[str, Any]] = {
        b.level: {"label": b.label, "colour": b.colour, "accounts": 0, "mrr_cents": 0}
        for b in bands
    }
    unscored = 0
    histogram = [0] * 10
    for score, risk, mrr in accounts_service.health_by_account(session):
        if score is None:
            unscored += 1
            continue
        histogram[min(int(score // 10), 9)] += 1
        bucket = levels.setdefault(
            risk or "unknown", {"label": risk, "colour": "#888888", "accounts": 0, "mrr_cents": 0}
        )
        bucket["accounts"] += 1
        bucket["mrr_cents"] += int(mrr or 0)
    return {"levels": levels, "histogram": histogram, "unscored": unscored}


def preview(session: Session, definition: dict[str, Any], *, as_of: datetime) -> dict[str, Any]:
    """The distribution the portfolio would have with this scorecard (nothing saved)."""
    config = parse_scorecard(definition)
    card = Card(
        config.key, 0, config.model_copy(update={"default": True, "segment": config.segment})
    )
    scored = compute(session, as_of=as_of, cards=[card])
    bands = config.bands_ascending()
    counts = {b.level: 0 for b in bands}
    histogram = [0] * 10
    scores = scored.score[~np.isnan(scored.score)]
    for lvl in scored.level:
        if lvl is not None:
            counts[lvl] += 1
    for s in scores.tolist():
        histogram[min(int(s // 10), 9)] += 1
    return {
        "accounts": scored.frame.n,
        "scored": int(scores.size),
        "mean": round(float(scores.mean()), 1) if scores.size else None,
        "levels": counts,
        "histogram": histogram,
    }


# Overrides.


def create_override(
    session: Session,
    account_id: uuid.UUID,
    *,
    score: float | None,
    risk_level: str | None,
    reason: str,
    expires_at: datetime,
    actor: Actor,
    now: datetime,
) -> HealthOverride:
    """Place a CSM's score and/or risk level over the computed one until `expires_at`."""
    accounts_service.get_account(session, account_id)
    if not reason or not reason.strip():
        raise InvalidInput("an override needs a reason", field="reason")
    if len(reason.strip()) > 1000:
        raise InvalidInput("the reason is limited to 1,000 characters", field="reason")
    if expires_at <= now:
        raise InvalidInput("the expiry must be in the future", field="expires_at")
    if score is None and risk_level is None:
        raise InvalidInput("give a score, a risk level or both", field="score")
    if score is not None and not 0 <= score <= 100:
        raise InvalidInput("score must be between 0 and 100", field="score")
    card = _default(active_cards(session, now=now))
    known = [b.level for b in card.config.risk_bands]
    if risk_level is not None and risk_level not in known:
        raise InvalidInput(
            f"unknown risk level {risk_level!r} (choose {', '.join(known)})", field="risk_level"
        )
    for current in repo.active_overrides(session, [account_id], at=now):
        current.removed_at = now
    override = HealthOverride(
        account_id=account_id,
        score=score,
        risk_level=risk_level,
        reason=reason.strip(),
        expires_at=expires_at,
        created_at=now,
        created_by=actor.label,
        created_by_id=actor.user_id,
    )
    repo.add(session, override)
    auth_service.audit(
        session,
        actor,
        "health.override",
        now=now,
        target_type="account",
        target_id=account_id,
        details={
            "score": score,
            "risk_level": risk_level,
            "reason": override.reason,
            "expires_at": expires_at.isoformat(),
        },
    )
    _apply_latest(session, account_id, now=now)
    return override


def remove_override(
    session: Session, account_id: uuid.UUID, *, actor: Actor, now: datetime
) -> None:
    current = repo.active_overrides(session, [account_id], at=now)
    if not current:
        raise NotFound("this account has no active override")
    for override in current:
        override.removed_at = now
    auth_service.audit(
        session,
        actor,
        "health.override_removed",
        now=now,
        target_type="account",
        target_id=account_id,
    )
    _apply_latest(session, account_id, now=now)


def _apply_latest(session: Session, account_id: uuid.UUID, *, now: datetime) -> None:
    """Refresh the account's displayed score and level after an override changed."""
    session.flush()
    row = repo.latest_score(session, account_id)
    override = active_override(session, account_id, at=now)
    score = row.score if row else None
    risk = row.risk_level if row else None
    if override is not None:
        card = _default(active_cards(session, now=now))
        score = override.score if override.score is not None else score
        if override.risk_level is not None:
            risk = override.risk_level
        elif override.score is not None:
            risk = card.config.level_of(override.score)
    accounts_service.set_health(
        session,
        [
            {
                "id": account_id,
                "health_score": score,
                "health_risk": risk,
                "health_as_of": row.as_of if row else now,
            }
        ],
    )


def expire_overrides(session: Session, *, now: datetime) -> int:
    """Accounts whose override lapsed get their computed score back on display."""
    lapsed = repo.lapsed_overrides(session, now=now)
    for account_id in lapsed:
        _apply_latest(session, account_id, now=now)
    return len(lapsed)


# Reading for the API and the CLI: the computed score with the override beside it.


@dataclass
class HealthView:
    """An account's latest computed score, the override active at a time, and the values
    that apply (the override's where it sets them)."""

    row: HealthScore
    override: HealthOverride | None
    effective_score: float | None
    effective_risk: str | None


def health_view(session: Session, account_id: uuid.UUID, *, at: datetime) -> HealthView | None:
    """The latest score with the override active at `at`; None if never scored."""
    row = repo.latest_score(session, account_id)
    if row is None:
        return None
    override = active_override(session, account_id, at=at)
    score, risk = row.score, row.risk_level
    if override is not None:
        if override.score is not None:
            score = override.score
        if override.risk_level is not None:
            risk = override.risk_level
        elif override.score is not None:
            cards = active_cards(session, now=at)
            card = next((c for c in cards if c.key == row.scorecard_key), _default(cards))
            risk = card.config.level_of(override.score)
    return HealthView(row, override, score, risk)


def overrides(session: Session, account_id: uuid.UUID) -> list[HealthOverride]:
    """Every override of the account, newest first (removed and expired ones included)."""
    return repo.overrides_of(session, account_id)


def risk_levels(session: Session) -> list[str]:
    """Every risk level of the scorecards in use, lowest band first."""
    levels: list[str] = []
    for card in active_cards(session):
        for band in card.config.bands_ascending():
            if band.level not in levels:
                levels.append(band.level)
    return levels
