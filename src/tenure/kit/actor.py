"""Who is acting: a staff user, an API key, the CLI or the system. Recorded in the audit log."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal

ActorKind = Literal["user", "api_key", "cli", "system"]


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    label: str
    id: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    role: str | None = None
    user_id: uuid.UUID | None = None
    ip: str | None = None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    @classmethod
    def cli(cls, label: str = "cli") -> Actor:
        return cls(kind="cli", label=label, scopes=frozenset({"read", "write", "admin", "ingest"}))

    @classmethod
    def system(cls, label: str = "system") -> Actor:
        return cls(
            kind="system", label=label, scopes=frozenset({"read", "write", "admin", "ingest"})
        )
