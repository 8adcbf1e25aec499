from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient


@pytest.fixture
def api(key_client: Callable[..., TestClient]) -> TestClient:
    """A client with a full API key: no password hashing per test, so the tests stay fast."""
    return key_client("read", "write", "admin")
