"""Static knowledge of the simulated business: markets, plans, the wedding calendar, features.

Everything here is data. The generator reads it; tests and docs quote it. Numbers were
chosen to look like a real wedding-supplier SaaS, then tuned so the measured churn and
predictability land where docs/simulator.md says they do.
"""

from __future__ import annotations

from dataclasses import dataclass

# ---------------------------------------------------------------------------------------------
# Markets


@dataclass(frozen=True, slots=True)
class Country:
    code: str
    hemisphere: str
    weight: float
    timezones: tuple[tuple[str, float], ...]
    currency: str
    locales: tuple[str, ...]
    tld: str
    # E.164 building blocks: country code, then national mobile prefixes and how many
    # random digits follow the prefix.
    calling_code: str
    mobile_prefixes: tuple[str, ...]
    subscriber_digits: int
    language: str


COUNTRIES: tuple[Country, ...] = (
    Country(
        "US",
        "north",
        0.33,
        (
            ("America/New_York", 0.36),
            ("America/Chicago", 0.26),
            ("America/Denver", 0.1),
            ("America/Los_Angeles", 0.28),
        ),
        "USD",
        ("en_US",),
        "com",
        "1",
        ("201", "212", "312", "415", "512", "617", "704", "720", "813", "917"),
        7,
        "en",
    ),
    Country(
        "GB",
        "north",
        0.14,
        (("Europe/London", 1.0),),
        "GBP",
        ("en_GB",),
        "co.uk",
        "44",
        ("74", "75", "77", "78", "79"),
        8,
        "en",
    ),
    Country(
        "CA",
        "north",
        0.07,
        (("America/Toronto", 0.5), ("America/Vancouver", 0.3), ("America/Edmonton", 0.2)),
        "CAD",
        ("en_CA",),
        "ca",
        "1",
        ("416", "604", "613", "780", "905"),
        7,
        "en",
    ),
    Country(
        "IE",
        "north",
        0.03,
        (("Europe/Dublin", 1.0),),
        "EUR",
        ("en_IE",),
        "ie",
        "353",
        ("83", "85", "86", "87", "89"),
        7,
        "en",
    ),
    Country(
        "FR",
        "north",
        0.05,
        (("Europe/Paris", 1.0),),
        "EUR",
        ("fr_FR",),
        "fr",
        "33",
        ("6", "7"),
        8,
        "fr",
    ),
    Country(
        "DE",
        "north",
        0.05,
        (("Europe/Berlin", 1.0),),
        "EUR",
        ("de_DE",),
        "de",
        "49",
        ("151", "160", "170", "176"),
        8,
        "de",
    ),
    Country(
        "AU",
        "south",
        0.15,
        (
            ("Australia/Sydney", 0.4),
            ("Australia/Melbourne", 0.35),
            ("Australia/Brisbane", 0.15),
            ("Australia/Perth", 0.1),
        ),
        "AUD",
        ("en_AU",),
        "com.au",
        "61",
        ("4",),
        8,
        "en",
    ),
    Country(
        "NZ",
        "south",
        0.04,
        (("Pacific/Auckland", 1.0),),
        "NZD",
        ("en_NZ",),
        "co.nz",
        "64",
        ("21", "22", "27"),
        7,
        "en",
    ),
    Country(
        "ZA",
        "south",
        0.04,
        (("Africa/Johannesburg", 1.0),),
        "ZAR",
        ("en_GB", "zu_ZA"),
        "co.za",
        "27",
        ("72", "76", "82", "83"),
        7,
        "en",
    ),
    Country(
        "AR",
        "south",
        0.03,
        (("America/Argentina/Buenos_Aires", 1.0),),
        "ARS",
        ("es_AR",),
        "com.ar",
        "54",
        ("911",),
        8,
        "es",
    ),
    Country(
        "BR",
        "south",
        0.07,
        (("America/Sao_Paulo", 1.0),),
        "BRL",
        ("pt_BR",),
        "com.br",
        "55",
        ("119", "219", "319", "419"),
        8,
        "pt",
    ),
)

# ---------------------------------------------------------------------------------------------
# Categories and plans

CATEGORIES: tuple[str, ...] = (
    "photographer",
    "videographer",
    "venue",
    "caterer",
    "florist",
    "planner",
    "dj_band",
    "baker",
    "hair_makeup",
    "stationer",
    "officiant",
    "rentals",
)
CATEGORY_WEIGHTS: tuple[float, ...] = (
    0.22,
    0.07,
    0.11,
    0.08,
    0.10,
    0.10,
    0.06,
    0.06,
    0.08,
    0.04,
    0.03,
    0.05,
)

PLANS: tuple[str, ...] = ("starter", "professional", "scale")
# Bigger operations (venues, caterers, planners) buy bigger plans.
PLAN_WEIGHTS_DEFAULT: tuple[float, ...] = (0.48, 0.40, 0.12)
PLAN_WEIGHTS_LARGE: tuple[float, ...] = (0.25, 0.47, 0.28)
LARGE_CATEGORIES: frozenset[str] = frozenset({"venue", "caterer", "planner", "rentals"})

# List prices per month in minor units; localised rather than converted, like real SaaS.
PRICES: dict[str, tuple[int, int, int]] = {
    "USD": (2900, 7900, 19900),
    "CAD": (3900, 9900, 24900),
    "GBP": (2500, 6500, 16500),
    "EUR": (2900, 7500, 18900),
    "AUD": (4500, 11900, 29900),
    "NZD": (4900, 12900, 32900),
    "ZAR": (49900, 139900, 349900),
    "ARS": (2900000, 7900000, 19900000),
    "BRL": (14900, 39900, 99900),
}

# Contacts per account by plan: (min, max) inclusive.
TEAM_SIZE: dict[str, tuple[int, int]] = {
    "starter": (1, 2),
    "professional": (1, 4),
    "scale": (2, 6),
}

# ---------------------------------------------------------------------------------------------
# The wedding calendar

# Northern-hemisphere activity by calendar month (index 0 = January). Weddings run May-Oct;
# the southern curve is the same shifted by six months.
SEASON_NORTH: tuple[float, ...] = (
    0.64,
    0.62,
    0.66,
    0.84,
    1.18,
    1.34,
    1.32,
    1.36,
    1.40,
    1.24,
    0.74,
    0.56,
)
PEAK_MONTHS: dict[str, frozenset[int]] = {
    "north": frozenset({5, 6, 7, 8, 9, 10}),
    "south": frozenset({11, 12, 1, 2, 3, 4}),
}
# Engagements cluster around Christmas, New Year and Valentine's Day in both hemispheres.
ENGAGEMENT_MONTHS: frozenset[int] = frozenset({12, 1, 2})

# How strongly a category follows the wedding season (1 = fully, 0 = flat).
SEASON_AMPLITUDE: dict[str, float] = {
    "photographer": 1.0,
    "videographer": 1.0,
    "venue": 0.65,
    "caterer": 0.85,
    "florist": 0.9,
    "planner": 0.6,
    "dj_band": 0.95,
    "baker": 0.85,
    "hair_makeup": 0.95,
    "stationer": 0.7,
    "officiant": 0.9,
    "rentals": 0.9,
}

# App activity by weekday, Monday first. Suppliers who work the wedding itself are away from
# the desk at weekends and catch up midweek; planners and venues keep office hours all week.
_SHOOTERS = (1.05, 1.30, 1.35, 1.25, 0.85, 0.35, 0.45)
_DAY_OF_MAKERS = (1.10, 1.15, 1.15, 1.20, 1.05, 0.55, 0.45)
_STEADY = (1.05, 1.05, 1.05, 1.05, 1.00, 0.85, 0.75)
_OFFICE = (1.15, 1.15, 1.15, 1.10, 1.00, 0.45, 0.40)
WEEKDAY_PATTERN: dict[str, tuple[float, ...]] = {
    "photographer": _SHOOTERS,
    "videographer": _SHOOTERS,
    "dj_band": _SHOOTERS,
    "venue": _STEADY,
    "planner": _STEADY,
    "caterer": _DAY_OF_MAKERS,
    "florist": _DAY_OF_MAKERS,
    "baker": _DAY_OF_MAKERS,
    "hair_makeup": _DAY_OF_MAKERS,
    "rentals": _DAY_OF_MAKERS,
    "stationer": _OFFICE,
    "officiant": _OFFICE,
}

# ---------------------------------------------------------------------------------------------
# Product features (Segment track event names)

# In the order a typical account adopts them: onboarding unlocks this list from the top.
FEATURES: tuple[str, ...] = (
    "client_added",
    "message_sent",
    "invoice_sent",
    "payment_received",
    "form_created",
    "contract_signed",
    "proposal_sent",
    "form_submitted",
    "meeting_booked",
    "calendar_connected",
    "questionnaire_sent",
    "task_completed",
    "journey_launched",
    "review_requested",
    "review_received",
    "timeline_shared",
    "gallery_delivered",
    "team_member_invited",
    "integration_connected",
    "report_viewed",
    "referral_sent",
)
LOGIN = "login"
# Features every account has from day one (counted from the top of FEATURES).
CORE_FEATURES = 4

FEATURE_WEIGHTS: dict[str, float] = {
    "client_added": 1.0,
    "message_sent": 2.2,
    "invoice_sent": 0.8,
    "payment_received": 0.8,
    "form_created": 0.25,
    "contract_signed": 0.45,
    "proposal_sent": 0.5,
    "form_submitted": 0.8,
    "meeting_booked": 0.6,
    "calendar_connected": 0.03,
    "questionnaire_sent": 0.45,
    "task_completed": 1.4,
    "journey_launched": 0.2,
    "review_requested": 0.3,
    "review_received": 0.2,
    "timeline_shared": 0.3,
    "gallery_delivered": 0.35,
    "team_member_invited": 0.03,
    "integration_connected": 0.03,
    "report_viewed": 0.3,
    "referral_sent": 0.05,
}
# Category-specific exceptions to FEATURE_WEIGHTS (multipliers).
FEATURE_CATEGORY_FACTOR: dict[str, dict[str, float]] = {
    "gallery_delivered": {"photographer": 1.0, "videographer": 0.8, "_": 0.0},
    "timeline_shared": {"planner": 3.0, "venue": 2.0, "officiant": 1.5, "_": 0.6},
    "questionnaire_sent": {"photographer": 1.5, "dj_band": 1.8, "planner": 1.5, "_": 1.0},
    "meeting_booked": {"venue": 1.6, "caterer": 1.5, "planner": 1.4, "_": 1.0},
    "proposal_sent": {"venue": 1.5, "caterer": 1.7, "florist": 1.6, "rentals": 1.6, "_": 1.0},
}
INQUIRY_FEATURES: frozenset[str] = frozenset({"client_added", "form_submitted", "meeting_booked"})
INQUIRY_BOOST = 3.2
DELIVERY_FEATURES: frozenset[str] = frozenset(
    {"gallery_delivered", "invoice_sent", "payment_received", "timeline_shared"}
)
DELIVERY_BOOST = 1.3

LOGIN_PLATFORMS: tuple[str, ...] = ("web", "ios", "android")
LOGIN_PLATFORM_WEIGHTS: tuple[float, ...] = (0.62, 0.24, 0.14)
LEAD_SOURCES: tuple[str, ...] = (
    "website_form",
    "instagram",
    "referral",
    "the_knot",
    "wedding_wire",
    "google",
    "manual",
)
FORM_KINDS: tuple[str, ...] = ("inquiry", "questionnaire", "booking", "feedback")
MEETING_KINDS: tuple[str, ...] = ("consultation", "video_call", "site_visit", "tasting")
INTEGRATIONS: tuple[str, ...] = ("quickbooks", "xero", "stripe", "zapier", "mailchimp", "gmail")
CALENDARS: tuple[str, ...] = ("google", "outlook", "icloud")

# ---------------------------------------------------------------------------------------------
# Support

SUPPORT_TYPES: tuple[str, ...] = (
    "how_to",
    "bug",
    "billing",
    "feature_request",
    "onboarding_help",
    "integration_issue",
    "data_import",
    "account_access",
    "performance",
    "cancellation_request",
    "refund",
    "complaint",
    "training",
    "outage",
    "other",
)
# Base mix of tickets for a settled, reasonably happy account.
SUPPORT_MIX_SETTLED: dict[str, float] = {
    "how_to": 0.30,
    "bug": 0.12,
    "billing": 0.10,
    "feature_request": 0.12,
    "integration_issue": 0.08,
    "account_access": 0.07,
    "performance": 0.04,
    "training": 0.04,
    "other": 0.13,
}
SUPPORT_MIX_ONBOARDING: dict[str, float] = {
    "onboarding_help": 0.35,
    "data_import": 0.2,
    "how_to": 0.25,
    "training": 0.12,
    "integration_issue": 0.08,
}
SUPPORT_MIX_UNHAPPY: dict[str, float] = {
    "bug": 0.30,
    "complaint": 0.25,
    "performance": 0.15,
    "billing": 0.15,
    "feature_request": 0.15,
}
SUPPORT_CHANNELS: tuple[str, ...] = ("email", "chat", "phone", "video", "in_app")
SUPPORT_CHANNEL_WEIGHTS: tuple[float, ...] = (0.40, 0.30, 0.12, 0.06, 0.12)
# Median hours to resolution per channel; the spread is lognormal.
RESOLUTION_HOURS: dict[str, float] = {
    "email": 20.0,
    "chat": 2.0,
    "phone": 3.0,
    "video": 24.0,
    "in_app": 12.0,
}
PRIORITIES: tuple[str, ...] = ("low", "normal", "high", "urgent")
TYPE_PRIORITY: dict[str, tuple[float, float, float, float]] = {
    "outage": (0.0, 0.1, 0.4, 0.5),
    "bug": (0.1, 0.5, 0.3, 0.1),
    "account_access": (0.05, 0.45, 0.4, 0.1),
    "complaint": (0.05, 0.45, 0.4, 0.1),
    "cancellation_request": (0.0, 0.5, 0.4, 0.1),
    "performance": (0.1, 0.5, 0.3, 0.1),
    "feature_request": (0.6, 0.4, 0.0, 0.0),
    "training": (0.5, 0.5, 0.0, 0.0),
}
DEFAULT_PRIORITY: tuple[float, float, float, float] = (0.25, 0.6, 0.13, 0.02)
# Added to the account's sentiment for this kind of ticket.
TYPE_SENTIMENT: dict[str, float] = {
    "complaint": -0.55,
    "outage": -0.35,
    "cancellation_request": -0.45,
    "refund": -0.3,
    "bug": -0.2,
    "performance": -0.2,
    "account_access": -0.1,
    "billing": -0.1,
    "how_to": 0.1,
    "training": 0.15,
    "onboarding_help": 0.1,
    "feature_request": 0.0,
}
TYPE_OUTCOMES: dict[str, tuple[str, ...]] = {
    "how_to": ("answered", "answered", "documentation_sent"),
    "bug": ("fixed", "workaround_provided", "escalated_to_engineering"),
    "billing": ("answered", "credit_issued", "invoice_corrected"),
    "feature_request": ("feature_request_logged",),
    "onboarding_help": ("answered", "training_scheduled"),
    "integration_issue": ("fixed", "workaround_provided"),
    "data_import": ("import_completed", "answered"),
    "account_access": ("access_restored",),
    "performance": ("fixed", "workaround_provided", "no_fault_found"),
    "cancellation_request": ("cancelled", "retained", "retained_with_discount"),
    "refund": ("refund_issued", "refund_declined"),
    "complaint": ("apology_sent", "credit_issued", "escalated_to_manager"),
    "training": ("training_scheduled", "training_completed"),
    "outage": ("fixed",),
    "other": ("answered", "duplicate"),
}
# ---------------------------------------------------------------------------------------------
# Churn

CHURN_CAUSES: tuple[str, ...] = (
    "business_closed",
    "price",
    "switched_competitor",
    "missing_features",
    "poor_support",
    "payment_failed",
    "seasonal_pause",
)
# Causes nobody could see coming from product data.
UNFORESEEABLE_CAUSES: frozenset[str] = frozenset({"business_closed"})
# Probability that an account churned for this cause comes back within the period.
REACTIVATION_PROBABILITY: dict[str, float] = {
    "business_closed": 0.02,
    "price": 0.15,
    "switched_competitor": 0.07,
    "missing_features": 0.10,
    "poor_support": 0.06,
    "payment_failed": 0.35,
    "seasonal_pause": 0.60,
}
FAILED_PAYMENT_REASONS: tuple[str, ...] = (
    "card_declined",
    "insufficient_funds",
    "expired_card",
    "authentication_required",
)
