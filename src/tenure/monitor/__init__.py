"""Tenure watching itself: liveness, readiness, and (later) self-checks and alerts."""
