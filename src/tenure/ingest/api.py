"""Routes: /api/v1/metrics (the metric catalogue in force)."""

from __future__ import annotations

from fastapi import APIRouter

from tenure.auth.dependencies import Reader
from tenure.deps import State
from tenure.ingest.catalogue import MetricCatalogue, load_catalogue

router = APIRouter(prefix="/api/v1/metrics", tags=["metrics"])


@router.get("/catalogue", response_model=MetricCatalogue)
def catalogue(state: State, _: Reader) -> MetricCatalogue:
    """Which event names count as sessions and as which key feature."""
    return load_catalogue(state.settings.metric_catalogue)
