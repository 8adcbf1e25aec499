"""Imports every domain's tables so Base.metadata is complete (Alembic, tests)."""

from tenure.accounts import models as accounts_models
from tenure.auth import models as auth_models
from tenure.churn import models as churn_models
from tenure.health import models as health_models
from tenure.hub import models as hub_models
from tenure.ingest import models as ingest_models
from tenure.support import models as support_models
from tenure.webhooks import models as webhooks_models

__all__ = [
    "accounts_models",
    "auth_models",
    "churn_models",
    "health_models",
    "hub_models",
    "ingest_models",
    "support_models",
    "webhooks_models",
]
