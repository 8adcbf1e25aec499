"""Risk factors in words a CSM can act on, from a signal's value and its reference."""

from __future__ import annotations

import calendar
import math
from datetime import date
from functools import cache
from typing import Any, cast

from tenure.health.signals import SignalFrame

PLURAL = {
    "photographer": "photographers",
    "videographer": "videographers",
    "venue": "venues",
    "planner": "planners",
    "caterer": "caterers",
    "florist": "florists",
}


@cache
def _plural(category: str | None) -> str:
    if not category:
        return "accounts like this one"
    return PLURAL.get(category, category.replace("_", " ") + "s")


def _pct_below(value: float, reference: float) -> int:
    if reference <= 0:
        return 0
    return round(max(0.0, 1.0 - value / reference) * 100)


def _n(value: float, one: str, many: str) -> str:
    count = round(value)
    return f"{count} {one if count == 1 else many}"


@cache
def _month_name(month: int) -> str:
    # calendar.month_name formats a date on every lookup: once per month is enough.
    return calendar.month_name[month]


def sentence(
    signal: str, frame: SignalFrame, row: int, *, category: str | None, seasonal: bool
) -> str:
    """What the signal says about the account at `row`, as one sentence (`frame` may hold
    Python lists instead of arrays: `as_lists`)."""
    v = float(frame.values[signal][row]) if signal in frame.values else math.nan
    month = _month_name(int(frame.extras["window_month"][row]))
    where = f"for {_plural(category)} in {month}" if seasonal else f"for {_plural(category)}"
    if signal in ("active_days_30", "sessions_30"):
        key = "active_days" if signal == "active_days_30" else "sessions"
        exp = float(frame.expected[key if seasonal else key + "@flat"][row])
        what = (
            f"Active on {_n(v, 'day', 'days')} of the last 30"
            if key == "active_days"
            else f"{_n(v, 'session', 'sessions')} in the last 30 days"
        )
        below = _pct_below(v, exp)
        if below:
            return f"{what}: {below}% below the usual {exp:.0f} {where}"
        return f"{what}, about the usual {exp:.0f} {where}"
    if signal == "activity_trend":
        change = round((v - 1.0) * 100)
        qualifier = " once the season is taken into account" if seasonal else ""
        if change < 0:
            return f"Activity fell {-change}% vs the previous 30 days{qualifier}"
        return f"Activity is up {change}% vs the previous 30 days{qualifier}"
    if signal == "sessions_vs_last_year":
        change = round((v - 1.0) * 100)
        if change < 0:
            return f"Sessions fell {-change}% vs the same season last year"
        return f"Sessions are up {change}% vs the same season last year"
    if signal in ("feature_breadth_30", "feature_breadth_90"):
        total = int(frame.extras["key_features"][row])
        days = 30 if signal.endswith("30") else 90
        return f"Uses {int(v)} of {total} key features (last {days} days)"
    if signal == "nps":
        latest = frame.extras["latest_nps"][row]
        if not math.isnan(latest):
            on = date.fromordinal(int(frame.extras["latest_nps_day"][row]))
            return f"NPS {int(latest)} on {on.day} {_month_name(on.month)} {on.year}"
        return f"Recent NPS averages {v:.1f}"
    if signal == "csat":
        return f"Recent CSAT averages {v:.1f} out of 5"
    if signal == "support_sentiment":
        tone = "negative" if v < 0 else "lukewarm"
        return f"Support conversations in the last 90 days were {tone} (sentiment {v:+.2f})"
    if signal == "open_tickets":
        return f"{_n(v, 'support ticket', 'support tickets')} open"
    if signal == "aging_tickets":
        return f"{_n(v, 'ticket', 'tickets')} open for more than 10 days"
    if signal == "escalated_tickets":
        return f"{_n(v, 'escalated ticket', 'escalated tickets')} open"
    if signal == "mrr_change_90":
        return f"MRR down {round(-v * 100)}% in the last 90 days"
    if signal == "failed_payments_90":
        return f"{_n(v, 'failed payment', 'failed payments')} in the last 90 days"
    if signal == "downgrades_90":
        return f"Downgraded {_n(v, 'time', 'times')} in the last 90 days"
    if signal == "season_ahead_churn":
        return (
            f"Season ahead: {v * 100:.0f}% of {_plural(category)} usually cancel in the next "
            "two months at this time of year"
        )
    if signal == "days_since_seen":
        return f"Nobody from the account has been active for {int(v)} days"
    return f"{signal} = {v:g}"


def as_lists(frame: SignalFrame) -> SignalFrame:
    """The same frame with Python lists for arrays: `sentence` reads single cells, which
    lists give without a numpy scalar per read (the values are the same floats)."""

    def listed(arrays: dict[str, Any]) -> dict[str, Any]:
        return {k: v.tolist() for k, v in arrays.items()}

    return SignalFrame(
        frame.account_ids,
        cast(Any, listed(frame.values)),
        cast(Any, listed(frame.expected)),
        cast(Any, listed(frame.extras)),
    )
