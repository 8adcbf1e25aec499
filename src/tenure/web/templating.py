"""Jinja2 environment of the dashboard: autoescaped, with formatting filters."""

from __future__ import annotations

from datetime import datetime
from importlib.resources import files

from fastapi.templating import Jinja2Templates

from tenure import __version__

_SYMBOLS = {
    "USD": "$",
    "EUR": "€",
    "GBP": "£",
    "AUD": "A$",
    "NZD": "NZ$",
    "CAD": "C$",
    "ZAR": "R",
    "BRL": "R$",
    "ARS": "AR$",
}


def money(cents: int | None, currency: str = "USD") -> str:
    if cents is None:
        return "—"
    symbol = _SYMBOLS.get(currency)
    amount = f"{cents / 100:,.2f}"
    return f"{symbol}{amount}" if symbol else f"{amount} {currency}"


def when(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M UTC") -> str:
    return value.strftime(fmt) if value else "—"


def day(value: datetime | None) -> str:
    return value.strftime("%d %b %Y") if value else "—"


def label(value: str | None) -> str:
    return (value or "—").replace("_", " ").capitalize()


templates = Jinja2Templates(directory=str(files("tenure.web").joinpath("templates")))
templates.env.filters.update(money=money, when=when, day=day, label=label)
templates.env.globals["version"] = __version__
