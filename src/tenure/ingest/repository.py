"""Every query of the ingest domain."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import date, timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from tenure.ingest.catalogue import MetricCatalogue, current_catalogue, feature_bits
from tenure.ingest.models import ActiveDay, Event, UsageDaily, UsageDay, UsageFirst
from tenure.ingest.rollup import ALL_EVENTS as ALL_EVENTS_METRIC
from tenure.kit.bulk import (
    add_to_counts,
    bulk_insert,
    insert_ignoring_conflicts,
    insert_returning,
    merge_rows,
)
from tenure.kit.keys import key_text

ACTIVITY_TYPES = ("track", "page", "screen")


def insert_events(session: Session, columns: Mapping[str, Sequence[Any]]) -> int:
    return bulk_insert(session, Event, columns)


def insert_usage(session: Session, columns: Mapping[str, Sequence[Any]]) -> int:
    return bulk_insert(session, UsageDaily, columns)


def count_events(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Event)) or 0


def daily_totals(
    session: Session,
    *,
    metric: str,
    since: date,
    until: date,
    account_id: uuid.UUID | None = None,
    account_ids: Select[Any] | None = None,
) -> list[tuple[date, int, int]]:
    """(day, sum of counts, number of accounts with a row) per day in [since, until)."""
    query = select(UsageDaily.day, func.sum(UsageDaily.count), func.count()).where(
        UsageDaily.metric == metric, UsageDaily.day >= since, UsageDaily.day < until
    )
    if account_id is not None:
        query = query.where(UsageDaily.account_id == account_id)
    if account_ids is not None:
        query = query.where(UsageDaily.account_id.in_(account_ids))
    rows = session.execute(query.group_by(UsageDaily.day))
    return [(day, int(total or 0), int(n)) for day, total, n in rows]


def insert_new_events(session: Session, rows: list[dict[str, Any]]) -> set[str]:
    """Insert events whose (source, message_id) is new; returns the message ids stored.

    A duplicate already stored, in the same batch, or arriving concurrently in another
    request is skipped, on both engines: PostgreSQL inserts with ON CONFLICT DO NOTHING
    RETURNING; SQLite reads which ids are stored, then inserts the others in one
    executemany (see `_insert_new_events_sqlite`).
    """
    if not rows:
        return set()
    rows = sorted(rows, key=lambda r: (r["source"], r["message_id"]))
    if session.connection().dialect.name == "sqlite":
        return _insert_new_events_sqlite(session, rows)
    stored = insert_returning(
        session,
        Event,
        {k: [r[k] for r in rows] for k in rows[0]},
        ["source", "message_id"],
        ["message_id"],
    )
    return {message_id for (message_id,) in stored}


# Bound values per statement when reading stored ids (under SQLite's oldest limit, 999).
_IDS_PER_READ = 900


def _insert_new_events_sqlite(session: Session, rows: list[dict[str, Any]]) -> set[str]:
    """SQLite: an executemany costs less than a multi-row INSERT ... RETURNING.

    Exact: the transaction began before the read (the engine always sends BEGIN), and in
    WAL mode a transaction whose snapshot another writer has since changed cannot write
    (SQLITE_BUSY_SNAPSHOT), so no row can appear between the read and the insert. The
    insert still ignores conflicts, and its row count is checked."""
    conn = session.connection()
    stored: set[tuple[str, str]] = set()
    by_source: dict[str, list[str]] = {}
    for r in rows:
        by_source.setdefault(r["source"], []).append(r["message_id"])
    for source, ids in by_source.items():
        for start in range(0, len(ids), _IDS_PER_READ):
            chunk = ids[start : start + _IDS_PER_READ]
            found = conn.exec_driver_sql(
                "SELECT message_id FROM events WHERE source = ? "  # noqa: S608
                f"AND message_id IN ({', '.join('?' for _ in chunk)})",
                (source, *chunk),
            ).fetchall()
            stored.update((source, message_id) for (message_id,) in found)
    fresh: list[dict[str, Any]] = []
    for r in rows:  # the first of the same message twice in `rows` wins, as with RETURNING
        key = (r["source"], r["message_id"])
        if key not in stored:
            stored.add(key)
            fresh.append(r)
    if not fresh:
        return set()
    inserted = insert_ignoring_conflicts(
        session, Event, {k: [r[k] for r in fresh] for k in fresh[0]}, ["source", "message_id"]
    )
    if inserted != len(fresh):
        raise RuntimeError(f"events: {len(fresh)} new rows read, {inserted} inserted")
    return {r["message_id"] for r in fresh}


def add_usage(session: Session, counts: Mapping[tuple[uuid.UUID, date, str], int]) -> None:
    """Add counts per (account, day, metric) to usage_daily rows, creating them when missing,
    and fold them into usage_days and usage_firsts."""
    if not counts:
        return
    # One order for every writer: two batches touching the same rows never deadlock.
    # (A UUID's number sorts as its text does, and is cheaper to get.)
    keys = sorted(counts, key=lambda k: (k[0].int, k[1], k[2]))
    account_ids = [k[0] for k in keys]
    days = [k[1] for k in keys]
    metrics = [k[2] for k in keys]
    values = [counts[k] for k in keys]
    add_to_counts(
        session,
        UsageDaily,
        {"account_id": account_ids, "day": days, "metric": metrics, "count": values},
        ["account_id", "day", "metric"],
        "count",
    )
    # usage_firsts before usage_days, as every writer does (one lock order on PostgreSQL).
    _fold_firsts(session, zip(account_ids, metrics, days, strict=True))
    _fold_days(session, zip(account_ids, days, metrics, values, strict=True))


def fold_usage_summaries(session: Session, rows: list[dict[str, Any]]) -> None:
    """Fold usage_daily rows (dicts of a bulk load) into usage_firsts and usage_days, as
    add_usage does for the tracking path."""
    _fold_firsts(session, ((r["account_id"], r["metric"], r["day"]) for r in rows))
    _fold_days(session, ((r["account_id"], r["day"], r["metric"], r["count"]) for r in rows))


def _metric_roles(catalogue: MetricCatalogue) -> dict[str, tuple[bool, bool, int]]:
    """Metric -> (counts as all events, counts as a session, key-feature bit), for the
    metrics usage_days keeps (the others are absent)."""
    sessions_of = set(catalogue.activity.session_events)
    bits = feature_bits(catalogue)
    return {
        m: (m == ALL_EVENTS_METRIC, m in sessions_of, bits.get(m, 0))
        for m in {ALL_EVENTS_METRIC, *sessions_of, *bits}
    }


def _fold_days(session: Session, rows: Iterable[tuple[uuid.UUID, date, str, int]]) -> None:
    """(account, day, metric, count) rows added to usage_days."""
    roles = _metric_roles(current_catalogue())
    days: dict[tuple[uuid.UUID, date], list[int]] = {}
    for account_id, day, metric, count in rows:
        role = roles.get(metric)
        if role is None:
            continue
        acc = days.get((account_id, day))
        if acc is None:
            acc = days[(account_id, day)] = [0, 0, 0]
        if role[0]:
            acc[0] += count
        if role[1]:
            acc[1] += count
        acc[2] |= role[2]
    if not days:
        return
    keys = sorted(days, key=lambda k: (k[0].int, k[1]))
    merge_rows(
        session,
        UsageDay,
        {
            "account_id": [k[0] for k in keys],
            "day": [k[1] for k in keys],
            "events": [days[k][0] for k in keys],
            "sessions": [days[k][1] for k in keys],
            "features": [days[k][2] for k in keys],
        },
        ["account_id", "day"],
        "events = usage_days.events + excluded.events, "
        "sessions = usage_days.sessions + excluded.sessions, "
        "features = usage_days.features | excluded.features",
    )


def _fold_firsts(session: Session, rows: Iterable[tuple[uuid.UUID, str, date]]) -> None:
    """Keep usage_firsts: each (account, metric)'s earliest day among `rows` and before."""
    firsts: dict[tuple[uuid.UUID, str], date] = {}
    for account_id, metric, day in rows:
        key = (account_id, metric)
        seen = firsts.get(key)
        if seen is None or day < seen:
            firsts[key] = day
    if not firsts:
        return
    keys = sorted(firsts, key=lambda k: (k[0].int, k[1]))
    merge_rows(
        session,
        UsageFirst,
        {
            "account_id": [k[0] for k in keys],
            "metric": [k[1] for k in keys],
            "first_day": [firsts[k] for k in keys],
        },
        ["account_id", "metric"],
        # Only an earlier day rewrites the row: most batches touch known metrics.
        "first_day = excluded.first_day WHERE excluded.first_day < usage_firsts.first_day",
    )


def rebuild_usage_firsts(session: Session) -> int:
    """Recompute usage_firsts from usage_daily."""
    session.execute(delete(UsageFirst))
    select_rows = select(
        UsageDaily.account_id, UsageDaily.metric, func.min(UsageDaily.day)
    ).group_by(UsageDaily.account_id, UsageDaily.metric)
    result = session.execute(
        insert(UsageFirst).from_select(["account_id", "metric", "first_day"], select_rows)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def first_days(
    session: Session, *, metrics: Mapping[str, str], account_ids: Sequence[uuid.UUID] | None
) -> list[tuple[str, str, Any]]:
    """(account id as text (`kit.keys`), group, first day: a date, or ISO text) per account
    and group of metrics (`metrics`: metric -> group name): the group's earliest first day.
    With more than 5,000 `account_ids` (or None) every account's rows come back."""
    if not metrics:
        return []
    query, among = _first_days_queries(tuple(metrics.items()))
    if account_ids is None or len(account_ids) > 5000:
        # Most of the book: one pass beats many IN-lists; the caller keeps what it needs.
        return [tuple(r) for r in session.execute(query)]
    out: list[tuple[str, str, Any]] = []
    for start in range(0, len(account_ids), 5000):
        chunk = list(account_ids[start : start + 5000])
        out += [tuple(r) for r in session.execute(among, {"ids": chunk})]
    return out


@cache
def _first_days_queries(metrics: tuple[tuple[str, str], ...]) -> tuple[Select[Any], Select[Any]]:
    """first_days' query for every account and for those in :ids (built once per grouping:
    one prediction runs the second)."""
    group = case(*[(UsageFirst.metric == m, g) for m, g in metrics], else_=None)
    query = (
        select(key_text(UsageFirst.account_id), group, func.min(UsageFirst.first_day))
        .where(UsageFirst.metric.in_([m for m, _ in metrics]))
        .group_by(UsageFirst.account_id, group)
    )
    return query, query.where(UsageFirst.account_id.in_(bindparam("ids", expanding=True)))


def rebuild_usage_days(
    session: Session, *, session_events: Sequence[str], bits: Mapping[str, int]
) -> int:
    """Recompute usage_days from usage_daily (after a bulk load or a catalogue change)."""
    session.execute(delete(UsageDay))
    metric = UsageDaily.metric
    feature = case(*[(metric == name, bit) for name, bit in bits.items()], else_=None)
    select_rows = (
        select(
            UsageDaily.account_id,
            UsageDaily.day,
            func.coalesce(
                func.sum(case((metric == ALL_EVENTS_METRIC, UsageDaily.count), else_=0)), 0
            ),
            func.coalesce(
                func.sum(case((metric.in_(list(session_events)), UsageDaily.count), else_=0)), 0
            ),
            # Each feature's bit once, however many of its events: the sum is the OR.
            func.coalesce(func.sum(func.distinct(feature)), 0),
        )
        .where(metric.in_([ALL_EVENTS_METRIC, *session_events, *bits]))
        .group_by(UsageDaily.account_id, UsageDaily.day)
    )
    result = session.execute(
        insert(UsageDay).from_select(
            ["account_id", "day", "events", "sessions", "features"], select_rows
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def insert_active_days(
    session: Session, active: Collection[tuple[uuid.UUID, date, uuid.UUID]]
) -> list[tuple[uuid.UUID, date]]:
    """Record (account, day, contact) activity; returns (account, day) of the new ones."""
    if not active:
        return []
    rows = sorted(active, key=lambda r: (r[0].int, r[1], r[2].int))
    stored = insert_returning(
        session,
        ActiveDay,
        {
            "account_id": [r[0] for r in rows],
            "day": [r[1] for r in rows],
            "contact_id": [r[2] for r in rows],
        },
        ["account_id", "day", "contact_id"],
        ["account_id", "day", "contact_id"],
    )
    return [(a, d) for a, d, _ in stored]


def waiting_events(
    session: Session,
    *,
    group_ids: Collection[str] = (),
    user_ids: Collection[str] = (),
    anonymous_ids: Collection[str] = (),
) -> list[Any]:
    """Rows of events still waiting for their account or contact (Core, no ORM objects)."""
    conditions = []
    if group_ids:
        conditions.append(Event.account_id.is_(None) & Event.group_external_id.in_(group_ids))
    if user_ids:
        conditions.append(Event.contact_id.is_(None) & Event.user_external_id.in_(user_ids))
    if anonymous_ids:
        conditions.append(Event.contact_id.is_(None) & Event.anonymous_id.in_(anonymous_ids))
    if not conditions:
        return []
    query = select(
        Event.id,
        Event.account_id,
        Event.contact_id,
        Event.user_external_id,
        Event.anonymous_id,
        Event.group_external_id,
        Event.type,
        Event.name,
        Event.timestamp,
    ).where(or_(*conditions))
    return list(session.execute(query))


def link_events(session: Session, rows: list[dict[str, Any]]) -> None:
    """Executemany of {"eid", "aid", "cid"}: set account and contact of waiting events."""
    if rows:
        table: Table = Event.__table__  # type: ignore[assignment]
        session.execute(
            update(table)
            .where(table.c.id == bindparam("eid"))
            .values(account_id=bindparam("aid"), contact_id=bindparam("cid")),
            rows,
        )


CHUNK = 5000


def _chunks(ids: Sequence[uuid.UUID]) -> list[list[uuid.UUID]]:
    return [list(ids[i : i + CHUNK]) for i in range(0, len(ids), CHUNK)]


Accounts = Sequence[uuid.UUID] | Select[Any]


def _among(column: Any, account_ids: Accounts) -> list[ColumnElement[bool]]:
    """One condition per query to run: a subquery of ids (the whole portfolio: no ids
    bound), or IN lists of at most CHUNK ids."""
    if isinstance(account_ids, Select):
        return [column.in_(account_ids)]
    return [column.in_(chunk) for chunk in _chunks(account_ids)]


def usage_signals(
    session: Session,
    *,
    day: date,
    account_ids: Accounts,
    n_features: int,
) -> list[tuple[Any, ...]]:
    """Per account (its id as text, `key_text`), over the 90 days up to `day` (inclusive):
    active days in the last 30 and in the 30 before, sessions in the last 30, distinct key
    features in 30 and 90 days, last active day.

    Read from usage_days by primary key, one plain range query per 30 days (SQLite
    evaluates CASE expressions row by row: a WHERE per window is several times cheaper than
    one pass with conditional sums), so each row is read once: the 90 days' features are
    the union of the three windows' (bit masks OR-ed here)."""
    d30, d60, d90 = (day - timedelta(days=n) for n in (30, 60, 90))
    wanted = (1 << n_features) - 1
    if not isinstance(account_ids, Select) and len(account_ids) <= FEW:
        return _usage_signals_of_few(session, day=day, account_ids=account_ids, wanted=wanted)
    if session.get_bind().dialect.name == "postgresql":
        used: Any = func.bit_or(UsageDay.features)
    else:
        # (features & bit) is 0 or bit: the maxima of the bits add up to the OR of the masks.
        used = sum(
            (
                func.max(UsageDay.features.op("&")(literal_column(str(1 << k))))
                for k in range(n_features)
            ),
            start=literal_column("0"),
        )
    key = key_text(UsageDay.account_id)
    active = UsageDay.events > 0
    last30: dict[str, tuple[int, int, int, Any]] = {}
    before: dict[str, tuple[int, int, Any]] = {}
    earlier: dict[str, tuple[int, Any]] = {}
    for among in _among(UsageDay.account_id, account_ids):
        for a, days, sessions, mask, last in session.execute(
            select(key, func.count(), func.sum(UsageDay.sessions), used, func.max(UsageDay.day))
            .where(among, UsageDay.day > d30, UsageDay.day <= day, active)
            .group_by(UsageDay.account_id)
        ):
            last30[a] = (days, sessions or 0, int(mask or 0) & wanted, last)
        for a, days, mask, last in session.execute(
            select(key, func.count(), used, func.max(UsageDay.day))
            .where(among, UsageDay.day > d60, UsageDay.day <= d30, active)
            .group_by(UsageDay.account_id)
        ):
            before[a] = (days, int(mask or 0) & wanted, last)
        for a, mask, last in session.execute(
            select(key, used, func.max(UsageDay.day))
            .where(among, UsageDay.day > d90, UsageDay.day <= d60, active)
            .group_by(UsageDay.account_id)
        ):
            earlier[a] = (int(mask or 0) & wanted, last)
    out: list[tuple[Any, ...]] = []
    for a in last30.keys() | before.keys() | earlier.keys():
        days30, sessions30, mask30, last = last30.get(a, (0, 0, 0, None))
        days_before, mask_before, last_before = before.get(a, (0, 0, None))
        mask_earlier, last_earlier = earlier.get(a, (0, None))
        if last is None:
            last = last_before if last_before is not None else last_earlier
        mask90 = mask30 | mask_before | mask_earlier
        out.append(
            (a, days30, days_before, sessions30, mask30.bit_count(), mask90.bit_count(), last)
        )
    return out


# Up to this many accounts, usage signals come from their rows (at most 90 each) in one
# plain query: building and running the three grouped ones costs more.
FEW = 20
_FEW_ROWS = (
    select(
        key_text(UsageDay.account_id),
        UsageDay.day,
        UsageDay.events,
        UsageDay.sessions,
        UsageDay.features,
    )
    .where(
        UsageDay.account_id.in_(bindparam("ids", expanding=True)),
        UsageDay.day > bindparam("start"),
        UsageDay.day <= bindparam("end"),
        UsageDay.events > 0,
    )
    .order_by(UsageDay.account_id, UsageDay.day)
)


def _usage_signals_of_few(
    session: Session, *, day: date, account_ids: Sequence[uuid.UUID], wanted: int
) -> list[tuple[Any, ...]]:
    """usage_signals of a few accounts, summed here from their rows (the same figures)."""
    if not account_ids:
        return []
    d30, d60 = day - timedelta(days=30), day - timedelta(days=60)
    acc: dict[str, list[Any]] = {}
    rows = session.execute(
        _FEW_ROWS, {"ids": list(account_ids), "start": day - timedelta(days=90), "end": day}
    )
    for a, raw_day, _, sessions, features in rows:
        on = raw_day if isinstance(raw_day, date) else date.fromisoformat(raw_day)
        # [active days 30, active days before, sessions 30, mask 30, mask 90, last day]
        row = acc.setdefault(a, [0, 0, 0, 0, 0, None])
        mask = int(features or 0) & wanted
        if on > d30:
            row[0] += 1
            row[2] += sessions or 0
            row[3] |= mask
        elif on > d60:
            row[1] += 1
        row[4] |= mask
        row[5] = raw_day  # rows come in day order: the last is the latest
    return [(a, r[0], r[1], r[2], r[3].bit_count(), r[4].bit_count(), r[5]) for a, r in acc.items()]


def sessions_between(
    session: Session, *, start: date, end: date, account_ids: Accounts
) -> list[tuple[str, int]]:
    """Sessions per account (id as text) on days in (start, end]."""
    out: list[tuple[str, int]] = []
    key = key_text(UsageDay.account_id)
    for among in _among(UsageDay.account_id, account_ids):
        query = (
            select(key, func.sum(UsageDay.sessions))
            .where(among, UsageDay.day > start, UsageDay.day <= end)
            .group_by(UsageDay.account_id)
        )
        out.extend((a, n or 0) for a, n in session.execute(query))
    return out


def last_active_days(
    session: Session, *, since: date, until: date, account_ids: Accounts
) -> list[tuple[str, Any]]:
    """Last day with any event in (since, until] per account (id as text; the day as the
    driver returns it: a date, or ISO text on SQLite)."""
    out: list[tuple[str, Any]] = []
    key = key_text(UsageDay.account_id)
    for among in _among(UsageDay.account_id, account_ids):
        query = (
            select(key, func.max(UsageDay.day))
            .where(among, UsageDay.events > 0, UsageDay.day > since, UsageDay.day <= until)
            .group_by(UsageDay.account_id)
        )
        out.extend((a, last) for a, last in session.execute(query))
    return out


def monthly_activity(
    session: Session, *, since: date, until: date, account_ids: Sequence[uuid.UUID]
) -> list[tuple[uuid.UUID, str, int, int]]:
    """(account, 'YYYY-MM', active days, sessions) per account and month in [since, until)."""
    if session.get_bind().dialect.name == "postgresql":
        month = func.to_char(UsageDay.day, "YYYY-MM")
    else:
        month = func.substr(UsageDay.day, 1, 7)
    out: list[tuple[uuid.UUID, str, int, int]] = []
    for chunk in _chunks(account_ids):
        query = (
            select(
                UsageDay.account_id,
                month,
                func.sum(case((UsageDay.events > 0, 1), else_=0)),
                func.sum(UsageDay.sessions),
            )
            .where(UsageDay.account_id.in_(chunk), UsageDay.day >= since, UsageDay.day < until)
            .group_by(UsageDay.account_id, month)
        )
        out.extend((a, str(m), int(d or 0), int(n or 0)) for a, m, d, n in session.execute(query))
    return out


def first_usage_day(session: Session) -> date | None:
    return session.scalar(select(func.min(UsageDay.day)))


def usage_windows(
    session: Session, *, day: date, windows: Sequence[int], account_ids: Sequence[uuid.UUID]
) -> list[tuple[uuid.UUID, int, int, int, int]]:
    """(account, window days, active days, events, sessions) over the days in
    (day - window, day], one plain range query per window and chunk of accounts."""
    out: list[tuple[uuid.UUID, int, int, int, int]] = []
    for chunk in _chunks(account_ids):
        for window in windows:
            query = (
                select(
                    UsageDay.account_id,
                    func.count(),
                    func.sum(UsageDay.events),
                    func.sum(UsageDay.sessions),
                )
                .where(
                    UsageDay.account_id.in_(chunk),
                    UsageDay.day > day - timedelta(days=window),
                    UsageDay.day <= day,
                    UsageDay.events > 0,
                )
                .group_by(UsageDay.account_id)
            )
            out.extend(
                (a, window, int(d or 0), int(e or 0), int(s or 0))
                for a, d, e, s in session.execute(query)
            )
    return out


def last_usage_day(session: Session) -> date | None:
    return session.scalar(select(func.max(UsageDay.day)))
