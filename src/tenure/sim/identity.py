"""Who an account is: market, category, plan, price, signup, name, team and venue groups."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
from faker import Faker

from tenure.sim import catalog, texts
from tenure.sim.calendar import SECONDS_PER_DAY, Calendar

GROUP_BLOCK = 32
GROUP_PROBABILITY = 0.25
TRIAL_DAYS = 14
# Survivors already on the books when the period starts: mean age in days.
STOCK_MEAN_AGE_DAYS = 600.0
STOCK_MAX_AGE_DAYS = 8 * 365

_COUNTRY_WEIGHTS = np.asarray([c.weight for c in catalog.COUNTRIES], dtype=np.float64)
_COUNTRY_WEIGHTS /= _COUNTRY_WEIGHTS.sum()
_CATEGORY_WEIGHTS = np.asarray(catalog.CATEGORY_WEIGHTS, dtype=np.float64)
_CATEGORY_WEIGHTS /= _CATEGORY_WEIGHTS.sum()


@dataclass(frozen=True, slots=True)
class NamePool:
    first: tuple[str, ...]
    last: tuple[str, ...]


@cache
def name_pool(locale: str) -> NamePool:
    """Person names of one locale, drawn once from a fixed-seed Faker.

    Accounts then pick from the pool with their own numpy generator: deterministic, fast and
    independent of how many accounts were generated before.
    """
    fake = Faker(locale)
    fake.seed_instance(0)
    first = tuple(dict.fromkeys(fake.first_name() for _ in range(400)))
    last = tuple(dict.fromkeys(fake.last_name() for _ in range(400)))
    return NamePool(first=first, last=last)


@dataclass(frozen=True, slots=True)
class VenueGroup:
    parent_index: int
    child_indexes: tuple[int, ...]
    place: str
    country_index: int
    parent_name: str
    child_names: tuple[str, ...]


@cache
def _group_layout(seed: int, block: int) -> VenueGroup | None:
    # One draw per block of accounts, from its own stream, so that groups do not depend on
    # how the caller chunks the run.
    rng = np.random.default_rng([seed, 1, block])
    if rng.random() >= GROUP_PROBABILITY:
        return None
    size = int(rng.integers(2, 7))
    position = int(rng.integers(0, GROUP_BLOCK - size))
    place = str(rng.choice(texts.VENUE_PLACES))
    country = int(rng.choice(len(catalog.COUNTRIES), p=_COUNTRY_WEIGHTS))
    suffix = str(rng.choice(("Venue Group", "Collection", "Hospitality Group", "Venues")))
    nouns = rng.choice(texts.VENUE_NOUNS, size=size, replace=False)
    parent = block * GROUP_BLOCK + position
    return VenueGroup(
        parent_index=parent,
        child_indexes=tuple(range(parent + 1, parent + 1 + size)),
        place=place,
        country_index=country,
        parent_name=f"{place} {suffix}",
        child_names=tuple(f"{place} {noun}" for noun in nouns),
    )


def venue_group_of(seed: int, index: int) -> tuple[VenueGroup | None, int]:
    """The group the account belongs to, and its role: 0 none, 1 parent, 2 child."""
    group = _group_layout(seed, index // GROUP_BLOCK)
    if group is None:
        return None, 0
    if index == group.parent_index:
        return group, 1
    if index in group.child_indexes:
        return group, 2
    return None, 0


@dataclass(slots=True)
class ContactSpec:
    external_id: str
    name: str
    email: str
    phone: str
    role: str
    consents: dict[str, bool]
    traits: dict[str, Any]
    join_day: int
    # Relative activity of this person within the account (owner ~1).
    share: float


@dataclass(slots=True)
class Identity:
    index: int
    external_id: str
    country: catalog.Country
    timezone: str
    category: str
    plan: str
    price_factor: float
    signup_day: int
    signup_epoch: int
    trial_end_day: int
    name: str
    domain: str
    level: float
    role_in_group: int
    parent_external_id: str | None
    tags: list[str]
    traits: dict[str, Any]
    contacts: list[ContactSpec] = field(default_factory=list)

    @property
    def hemisphere(self) -> str:
        return self.country.hemisphere

    @property
    def currency(self) -> str:
        return self.country.currency

    def mrr_for(self, plan: str) -> int:
        return price(self.currency, plan, self.price_factor)


def price(currency: str, plan: str, factor: float) -> int:
    """Monthly price in minor units, rounded to whole currency units."""
    list_price = catalog.PRICES[currency][catalog.PLANS.index(plan)]
    return round(list_price * factor / 100.0) * 100


def account_external_id(index: int) -> str:
    return f"acc_{index + 1:06d}"


def build_identity(
    seed: int, index: int, cal: Calendar, months: int, rng: np.random.Generator
) -> Identity:
    group, role = venue_group_of(seed, index)
    if group is not None:
        country = catalog.COUNTRIES[group.country_index]
        category = "venue"
    else:
        country = catalog.COUNTRIES[int(rng.choice(len(catalog.COUNTRIES), p=_COUNTRY_WEIGHTS))]
        category = catalog.CATEGORIES[int(rng.choice(len(catalog.CATEGORIES), p=_CATEGORY_WEIGHTS))]
    zones = country.timezones
    zone_weights = np.asarray([w for _, w in zones])
    timezone = zones[int(rng.choice(len(zones), p=zone_weights / zone_weights.sum()))][0]

    if role == 1:
        plan = "scale"
    else:
        weights = (
            catalog.PLAN_WEIGHTS_LARGE
            if category in catalog.LARGE_CATEGORIES
            else catalog.PLAN_WEIGHTS_DEFAULT
        )
        plan = catalog.PLANS[int(rng.choice(3, p=np.asarray(weights)))]
    # List price for most; annual prepay, legacy prices and extra seats for the rest.
    billing = str(rng.choice(("monthly", "annual", "legacy", "seats"), p=(0.6, 0.2, 0.1, 0.1)))
    price_factor = {"monthly": 1.0, "annual": 0.83, "legacy": 0.9}.get(billing, 1.0)
    if billing == "seats":
        price_factor = 1.0 + 0.15 * int(rng.integers(1, 4))

    # The stock is sized so that the book of business is roughly stable over the period.
    stock_share = 20.0 / (20.0 + months)
    if rng.random() < stock_share:
        age = 1 + min(rng.exponential(STOCK_MEAN_AGE_DAYS), STOCK_MAX_AGE_DAYS)
        signup_day = -int(age)
    else:
        signup_day = int(np.searchsorted(cal.signup_cdf, rng.random(), side="right"))
        signup_day = min(signup_day, cal.n_days - 1)
    seconds = int(rng.integers(9 * 3600, 21 * 3600))
    signup_epoch = (
        int(
            cal.local_to_epoch(timezone, np.asarray([max(signup_day, 0)]), np.asarray([seconds]))[0]
        )
        + min(signup_day, 0) * SECONDS_PER_DAY
    )

    locale = country.locales[int(rng.integers(len(country.locales)))]
    pool = name_pool(locale)
    owner_first = pool.first[int(rng.integers(len(pool.first)))]
    owner_last = pool.last[int(rng.integers(len(pool.last)))]
    if group is not None and role == 1:
        name = group.parent_name
    elif group is not None:
        name = group.child_names[group.child_indexes.index(index)]
    else:
        name = _business_name(rng, category, country.language, owner_first, owner_last)
    domain = f"{_slug(name)}.{country.tld}"

    level = float(rng.lognormal(0.0, 0.35)) * {"starter": 0.85, "professional": 1.0}.get(plan, 1.15)
    if role == 1:
        # A group head office mostly looks at reports; the venues do the work.
        level *= 0.4
    tags = sorted(
        set(rng.choice(texts.ACCOUNT_TAGS, size=int(rng.choice(3, p=(0.45, 0.4, 0.15)))).tolist())
    )
    if group is not None:
        tags.append("venue-group")
    weddings = int(rng.integers(8, 40) * (3 if category in catalog.LARGE_CATEGORIES else 1))
    external_id = account_external_id(index)
    traits: dict[str, Any] = {
        "website": f"https://www.{domain}",
        "billing_interval": "annual" if billing == "annual" else "monthly",
        "weddings_per_year": weddings,
        "referral_source": str(rng.choice(texts.REFERRAL_SOURCES)),
        "language": country.language,
    }
    identity = Identity(
        index=index,
        external_id=external_id,
        country=country,
        timezone=timezone,
        category=category,
        plan=plan,
        price_factor=price_factor,
        signup_day=signup_day,
        signup_epoch=signup_epoch,
        trial_end_day=signup_day + TRIAL_DAYS,
        name=name,
        domain=domain,
        level=level,
        role_in_group=role,
        parent_external_id=account_external_id(group.parent_index) if role == 2 and group else None,
        tags=tags,
        traits=traits,
    )
    identity.contacts = _contacts(rng, identity, pool, owner_first, owner_last, cal.n_days)
    traits["team_size"] = len(identity.contacts)
    return identity


def _business_name(
    rng: np.random.Generator, category: str, language: str, first: str, last: str
) -> str:
    templates = texts.NAME_TEMPLATES[category]
    local = texts.LOCAL_NAME_TEMPLATES.get(language, {}).get(category)
    if local and rng.random() < 0.6:
        templates = local
    template = templates[int(rng.integers(len(templates)))]
    words = rng.choice(texts.BRAND_WORDS, size=2, replace=False)
    if category == "venue":
        place = str(rng.choice(texts.VENUE_PLACES))
        noun = str(rng.choice(texts.VENUE_NOUNS))
    else:
        place = noun = ""
    return template.format(
        first=first, last=last, word=words[0], word2=words[1], place=place, noun=noun
    )


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", _ascii(name.replace("&", " and ")).lower()) or "studio"


def _contacts(
    rng: np.random.Generator,
    identity: Identity,
    pool: NamePool,
    owner_first: str,
    owner_last: str,
    n_days: int,
) -> list[ContactSpec]:
    low, high = catalog.TEAM_SIZE[identity.plan]
    size = int(rng.integers(low, high + 1))
    people = [(owner_first, owner_last)]
    for _ in range(size - 1):
        people.append(
            (
                pool.first[int(rng.integers(len(pool.first)))],
                pool.last[int(rng.integers(len(pool.last)))],
            )
        )
    used: set[str] = set()
    result: list[ContactSpec] = []
    # Staff join over the first year; never after the end of the period.
    horizon = max(1, min(400, n_days - 1 - identity.signup_day))
    for j, (first, last) in enumerate(people):
        role = "owner" if j == 0 else ("admin" if rng.random() < 0.3 else "staff")
        first_slug = _slug(first) or "team"
        local = first_slug if j == 0 else f"{first_slug}.{_slug(last)}"
        while local in used:
            local = f"{local}{len(used)}"
        used.add(local)
        country = identity.country
        prefix = country.mobile_prefixes[int(rng.integers(len(country.mobile_prefixes)))]
        digits = "".join(str(d) for d in rng.integers(0, 10, size=country.subscriber_digits))
        if j == 0:
            share = 1.0
            join_day = identity.signup_day
        else:
            share = float(rng.lognormal(np.log(0.7 if role == "admin" else 0.45), 0.35))
            join_day = identity.signup_day + int(rng.integers(0, horizon))
        consents = {
            "email": bool(rng.random() < 0.92),
            "sms": bool(rng.random() < (0.4 if j == 0 else 0.22)),
            "in_app": bool(rng.random() < 0.97),
        }
        result.append(
            ContactSpec(
                external_id=f"usr_{identity.index + 1:06d}_{j + 1}",
                name=f"{first} {last}",
                email=f"{local}@{identity.domain}",
                phone=f"+{country.calling_code}{prefix}{digits}",
                role=role,
                consents=consents,
                traits={"first_name": first, "last_name": last, "language": country.language},
                join_day=join_day,
                share=share,
            )
        )
    return result


def join_epoch(identity: Identity, contact: ContactSpec) -> int:
    """When the contact was added: the owner at signup, staff at the same time of day later."""
    return identity.signup_epoch + (contact.join_day - identity.signup_day) * SECONDS_PER_DAY
