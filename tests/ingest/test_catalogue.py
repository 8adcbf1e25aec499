from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tenure.ingest.catalogue import load_catalogue
from tenure.kit.errors import ConfigurationError
from tenure.sim import catalog as sim_catalog


def test_default_catalogue_covers_every_simulated_feature() -> None:
    catalogue = load_catalogue()
    assert "login" in catalogue.activity.session_events
    assert all(catalogue.feature_of(f) for f in sim_catalog.FEATURES)
    assert catalogue.feature_of("gallery_delivered") == "delivery"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[activity]\nsession_events = ['login']\n", "key_features"),
        (
            "[activity]\nsession_events = ['login']\n[[key_features]]\nname = 'a'\nlabel = 'A'\n"
            "events = ['x']\n[[key_features]]\nname = 'b'\nlabel = 'B'\nevents = ['x']\n",
            "'x' is in key features 'a' and 'b'",
        ),
        ("[activity\n", "not valid TOML"),
        (
            "[activity]\nsession_events = ['login']\ncolour = 1\n[[key_features]]\nname = 'a'\n"
            "label = 'A'\nevents = ['x']\n",
            "activity.colour",
        ),
    ],
)
def test_bad_catalogues_name_the_mistake(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "catalogue.toml"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match=message):
        load_catalogue(path)


def test_catalogue_api(admin_client: TestClient) -> None:
    body = admin_client.get("/api/v1/metrics/catalogue").json()
    assert {f["name"] for f in body["key_features"]} >= {"clients", "billing", "delivery"}
