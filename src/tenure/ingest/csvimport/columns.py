"""Which file column feeds which field, per kind, and how a cell becomes a value.

Headers are matched case-insensitively, ignoring spaces, underscores and dashes, against
each field's aliases ("Account ID", "account_id" and "accountId" are one header).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, get_args

from pydantic import BaseModel

from tenure.accounts.schemas import AccountUpsert, ContactUpsert, SubscriptionChangeUpsert
from tenure.support.schemas import SupportInteractionUpsert, SurveyResponseUpsert

Kind = Literal["accounts", "contacts", "subscriptions", "events", "support", "surveys"]
KINDS: tuple[str, ...] = get_args(Kind)
# text: handed to pydantic as is; major: a money amount in major units, stored x100.
Convert = Literal["text", "time", "object", "list", "major"]


def normalise(header: str) -> str:
    return re.sub(r"[\s_\-]+", "", header).lower()


@dataclass(frozen=True)
class Spec:
    kind: str
    # normalised header -> (field, conversion)
    aliases: dict[str, tuple[str, Convert]]
    required: tuple[str, ...]
    # Unknown columns: kept as traits (accounts, contacts) or refused.
    extra_to_traits: bool = False
    # At least one of these fields must have a column.
    one_of: tuple[str, ...] = ()
    model: type[BaseModel] | None = None
    # field -> headers as documented (for help texts)
    spellings: dict[str, list[str]] = field(default_factory=dict)

    def describe(self) -> list[str]:
        """One line per field with the headers accepted for it, for --help and docs."""
        lines = []
        for name, spellings in self.spellings.items():
            mark = " (required)" if name in self.required else ""
            others = [s for s in spellings if s != name]
            accepted = f" ← {', '.join(others)}" if others else ""
            lines.append(f"{name}{mark}{accepted}")
        return lines


def _spec(
    kind: str,
    entries: list[tuple[str, Convert, tuple[str, ...]]],
    *,
    model: type[BaseModel] | None,
    required: tuple[str, ...] | None = None,
    extra_to_traits: bool = False,
    one_of: tuple[str, ...] = (),
) -> Spec:
    aliases: dict[str, tuple[str, Convert]] = {}
    documented: dict[str, list[str]] = {}
    for name, convert, spellings in entries:
        shown = documented.setdefault(name, [])
        for spelling in (name, *spellings):
            label = f"{spelling} (major units, x100)" if convert == "major" else spelling
            if label not in shown:
                shown.append(label)
            key = normalise(spelling)
            if key in aliases and aliases[key][0] != name:
                raise AssertionError(f"{kind}: header {spelling!r} is ambiguous")
            aliases.setdefault(key, (name, convert))
    if required is None:
        assert model is not None
        required = tuple(
            n
            for n, info in model.model_fields.items()
            if info.is_required() and n in {name for name, _, _ in entries}
        )
    return Spec(kind, aliases, required, extra_to_traits, one_of, model, documented)


_ACCOUNT_REF: tuple[str, ...] = ("account_id", "account", "group_id", "company_id")
_CONTACT_REF: tuple[str, ...] = ("contact_id", "contact", "user_id", "user")

SPECS: dict[str, Spec] = {
    "accounts": _spec(
        "accounts",
        [
            ("external_id", "text", ("id", "account_id", "account_external_id", "group_id")),
            ("name", "text", ("company", "account_name", "company_name")),
            ("category", "text", ("industry",)),
            ("plan", "text", ("plan_name",)),
            ("mrr_cents", "text", ()),
            ("mrr_cents", "major", ("mrr",)),
            ("currency", "text", ()),
            ("country", "text", ("country_code",)),
            ("hemisphere", "text", ()),
            ("timezone", "text", ("tz", "time_zone")),
            ("status", "text", ()),
            ("signup_at", "time", ("signup_date", "signed_up_at", "created_at")),
            ("churned_at", "time", ("churn_date",)),
            ("churn_reason", "text", ()),
            ("parent_external_id", "text", ("parent_id", "parent_account_id", "parent_group_id")),
            ("tags", "list", ()),
            ("traits", "object", ()),
        ],
        model=AccountUpsert,
        extra_to_traits=True,
    ),
    "contacts": _spec(
        "contacts",
        [
            ("external_id", "text", ("id", "user_id", "contact_id", "user")),
            ("account_external_id", "text", _ACCOUNT_REF),
            ("email", "text", ("email_address",)),
            ("name", "text", ("full_name",)),
            ("phone", "text", ("phone_number",)),
            ("role", "text", ("title", "job_title")),
            ("timezone", "text", ("tz", "time_zone")),
            ("consents", "object", ()),
            ("traits", "object", ()),
        ],
        model=ContactUpsert,
        extra_to_traits=True,
    ),
    "subscriptions": _spec(
        "subscriptions",
        [
            ("external_id", "text", ("id", "change_id")),
            ("account_external_id", "text", _ACCOUNT_REF),
            ("kind", "text", ("type", "change_type")),
            ("mrr_before_cents", "text", ()),
            ("mrr_before_cents", "major", ("mrr_before",)),
            ("mrr_after_cents", "text", ()),
            ("mrr_after_cents", "major", ("mrr_after",)),
            ("currency", "text", ()),
            ("plan", "text", ()),
            ("reason", "text", ()),
            ("occurred_at", "time", ("timestamp", "time", "date", "ts")),
        ],
        model=SubscriptionChangeUpsert,
    ),
    "events": _spec(
        "events",
        [
            ("message_id", "text", ("id", "event_id", "uuid")),
            ("account_id", "text", ("group_id", "account", "account_external_id")),
            ("user_id", "text", ("userid", "user", "distinct_id")),
            ("event", "text", ("name", "event_name")),
            ("timestamp", "time", ("time", "occurred_at", "ts")),
            ("properties", "object", ("props",)),
        ],
        model=None,
        required=("event", "timestamp"),
        one_of=("account_id", "user_id"),
    ),
    "support": _spec(
        "support",
        [
            ("external_id", "text", ("id", "ticket_id", "interaction_id")),
            ("account_external_id", "text", _ACCOUNT_REF),
            ("contact_external_id", "text", _CONTACT_REF),
            ("type", "text", ()),
            ("channel", "text", ()),
            ("status", "text", ()),
            ("priority", "text", ()),
            ("sentiment", "text", ()),
            ("outcome", "text", ()),
            ("escalated", "text", ()),
            ("subject", "text", ()),
            ("assignee", "text", ()),
            ("opened_at", "time", ("created_at", "opened")),
            ("resolved_at", "time", ("solved_at", "resolved")),
            ("follow_up_at", "time", ()),
        ],
        model=SupportInteractionUpsert,
    ),
    "surveys": _spec(
        "surveys",
        [
            ("external_id", "text", ("id", "response_id")),
            ("account_external_id", "text", _ACCOUNT_REF),
            ("contact_external_id", "text", _CONTACT_REF),
            ("kind", "text", ("type", "survey", "survey_type")),
            ("score", "text", ("rating",)),
            ("comment", "text", ("feedback", "text")),
            ("responded_at", "time", ("submitted_at", "created_at", "timestamp", "date")),
        ],
        model=SurveyResponseUpsert,
    ),
}


@dataclass(frozen=True)
class Column:
    index: int
    header: str  # as written in the file
    field: str | None  # None: an unknown column kept as a trait
    convert: Convert = "text"


@dataclass
class HeaderMap:
    columns: list[Column] = field(default_factory=list)
    width: int = 0
    # (column, reason): refused or duplicate columns; each is reported once.
    errors: list[tuple[str | None, str]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # required fields without a column
    index: dict[str, int] = field(default_factory=dict)  # field -> column index

    def header_of(self, name: str) -> str:
        """The file's header for a field (the field name when no column feeds it)."""
        for column in self.columns:
            if column.field == name:
                return column.header
        return name


def map_header(spec: Spec, header: list[str]) -> HeaderMap:
    result = HeaderMap(width=len(header))
    seen: dict[str, str] = {}  # field or trait key -> header that claimed it
    for index, raw in enumerate(header):
        title = raw.strip()
        if not title:
            result.errors.append((None, f"column {index + 1} has no name"))
            continue
        known = spec.aliases.get(normalise(title))
        if known is None and not spec.extra_to_traits:
            result.errors.append((title, f"unknown column for {spec.kind}"))
            continue
        key = known[0] if known else f"traits.{title}"
        if key in seen:
            result.errors.append(
                (title, f"column {title!r} repeats {seen[key]!r} (both give {key})")
            )
            continue
        seen[key] = title
        if known is None:
            result.columns.append(Column(index, title, None))
        else:
            result.columns.append(Column(index, title, known[0], known[1]))
            result.index[known[0]] = index
    result.missing = [name for name in spec.required if name not in result.index]
    if spec.one_of and not any(name in result.index for name in spec.one_of):
        result.missing.append(" or ".join(spec.one_of))
    return result


# ---------------------------------------------------------------------------------------------
# Cells to values; each raises ValueError with the reason a user can act on.

_EPOCH_MS = 10**11  # larger epoch numbers are milliseconds (10^11 s is the year 5138)
_EPOCH_MAX = 10**14


def parse_time(text: str) -> datetime:
    """ISO-8601 (naive means UTC) or epoch seconds/milliseconds, as aware UTC."""
    if text[0].isdigit() and text.replace(".", "", 1).isdigit() and len(text) >= 9:
        number = float(text)
        if number >= _EPOCH_MAX:
            raise ValueError(f"{text!r} is not a time (epoch seconds or milliseconds expected)")
        return datetime.fromtimestamp(number / 1000 if number >= _EPOCH_MS else number, UTC)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO-8601 time or epoch number") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at character {exc.pos + 1})") from None
    if not isinstance(value, dict):
        raise ValueError('must be a JSON object, like {"key": "value"}')
    return value


def parse_list(text: str) -> list[str]:
    """A JSON list of strings, or values separated by ';' or '|'."""
    if text.startswith("["):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a valid JSON list ({exc.msg})") from None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError("must be a JSON list of strings")
        return [v.strip() for v in value if v.strip()]
    return [part.strip() for part in re.split(r"[;|]", text) if part.strip()]


def parse_major(text: str) -> int:
    """A money amount in major units ("79.90") as minor units (7990)."""
    if "," in text:
        raise ValueError(f"{text!r}: use a dot for decimals and no thousands separator")
    try:
        amount = Decimal(text) * 100
    except InvalidOperation:
        raise ValueError(f"{text!r} is not an amount") from None
    if not amount.is_finite() or amount != amount.to_integral_value():
        raise ValueError(f"{text!r} is not an amount with at most 2 decimals")
    return int(amount)


_INT = re.compile(r"-?(0|[1-9][0-9]{0,17})")
_FLOAT = re.compile(r"-?(0|[1-9][0-9]*)\.[0-9]*[1-9]")


def trait_value(text: str) -> Any:
    """An unknown column's cell as a trait: numbers and booleans typed when unambiguous.

    "0042" stays a string (an id or a postcode), "42" becomes 42, "true" becomes True.
    """
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    if text in ("true", "false"):
        return text == "true"
    return text


CONVERTERS: dict[str, Any] = {
    "time": parse_time,
    "object": parse_object,
    "list": parse_list,
    "major": parse_major,
}
