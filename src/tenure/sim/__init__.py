"""Synthetic wedding-supplier SaaS business for the demo, tests and benchmarks."""

from tenure.sim.files import FileSummary, write_files
from tenure.sim.generator import Simulation, generate
from tenure.sim.records import (
    AccountBundle,
    AccountRecord,
    AccountTruth,
    ChurnTruth,
    ContactRecord,
    EventBlock,
    EventRecord,
    SimConfig,
    SubscriptionRecord,
    SupportRecord,
    SurveyRecord,
)

__all__ = [
    "AccountBundle",
    "AccountRecord",
    "AccountTruth",
    "ChurnTruth",
    "ContactRecord",
    "EventBlock",
    "EventRecord",
    "FileSummary",
    "SimConfig",
    "Simulation",
    "SubscriptionRecord",
    "SupportRecord",
    "SurveyRecord",
    "generate",
    "write_files",
]
