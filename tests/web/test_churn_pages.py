"""Churn in the dashboard, on a simulated business with model v1 trained (SQLite and
PostgreSQL): the Models page (report beside the baselines, live accuracy, drift, versions and
activation), the account page's "Churn risk" panel with Predict now, the at-risk list and the
portfolio's top of it."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from tenure.accounts.models import Account
from tenure.churn import service
from tenure.churn.models import ChurnModel
from tenure.web.churn import fmt
from tenure.web.templating import money
from tests.conftest import NOW
from tests.factories.auth import make_user
from tests.web.test_health_pages import csrf, section

HX = {"HX-Request": "true"}


@pytest.fixture
def database_url(simulated_database_url: str) -> str:
    return simulated_database_url


@pytest.fixture
def predicted(db: Session) -> service.PredictResult:
    """Every live account predicted with v1 today (also measures drift)."""
    result = service.predict(db, now=NOW)
    db.commit()
    return result


def log_in_as(client: TestClient, db: Session, role: str) -> uuid.UUID:
    email = f"{role}@example.com"
    user = make_user(db, now=NOW, email=email, role=role, password=f"{role}-password-long")
    db.commit()
    done = client.post(
        "/login", data={"email": email, "password": f"{role}-password-long"}, follow_redirects=False
    )
    assert done.status_code == 303
    return user.id


def copy_model(db: Session, version: int, *, status: str = "candidate") -> ChurnModel:
    """Another version with v1's booster and report (training a second one is slow)."""
    v1 = service.get_model(db, 1)
    columns = [c.key for c in ChurnModel.__table__.columns if c.key not in ("id", "version")]
    copy = ChurnModel(**{k: getattr(v1, k) for k in columns})
    copy.version, copy.status, copy.activated_at = version, status, None
    copy.note = "kept as a candidate (not activated on request)"
    db.add(copy)
    db.commit()
    return copy


def statuses(db: Session) -> dict[int, str]:
    db.rollback()  # a new transaction sees what the app committed
    return {m.version: m.status for m in service.models(db)}


def row_cells(page: str, label: str) -> list[str]:
    found = re.search(rf'<th scope="row">{re.escape(label)}</th>(.*?)</tr>', page, re.S)
    assert found, label
    return re.findall(r"<td[^>]*>(.*?)</td>", found.group(1))


def linked_ids(fragment: str) -> list[str]:
    return re.findall(r'<td><a href="/accounts/([0-9a-f-]{36})">', fragment)


def activate_forms(page: str) -> list[str]:
    return re.findall(r'action="/models/(\d+)/activate"', page)


class TestModelsPage:
    def test_report_beside_the_baselines(self, admin_client: TestClient, db: Session) -> None:
        model = service.get_model(db, 1)
        metrics = model.metrics
        page = admin_client.get("/models").text
        report = section(page, "report")
        assert "Model v1" in report and "activated: the first model" in report
        assert f"churn within {model.training['horizon_days']} days" in report
        # The three models side by side, from the stored metrics, then the live column.
        expected = [
            fmt(metrics[name]["roc_auc"])
            for name in ("lightgbm", "logistic_regression", "health_score")
        ]
        assert row_cells(report, "ROC AUC") == [*expected, "n/a"]
        assert row_cells(report, "Lift, top decile")[0] == fmt(
            metrics["lightgbm"]["lift_top_decile"]
        )
        assert (
            row_cells(report, "Examples")[:3]
            == [f"{model.training['validation']['examples']:,}"] * 3
        )
        assert "0 matured predictions" in report
        # Calibration, top 10 features, the out-of-time split.
        calibration = report[report.index('id="calibration"') :]
        calibration = calibration[: calibration.index("</table>")]
        assert calibration.count("<tr><td>") == len(metrics["lightgbm"]["calibration"])
        top = next(iter(metrics["importance"]))
        assert f"<code>{top}</code>" in report
        assert report[report.index('id="importance"') :].count("<code>") == min(
            10, len(metrics["importance"])
        )
        validation = model.training["validation"]
        assert validation["from"][:10] in report and validation["to"][:10] in report
        # Drift is measured by the first portfolio prediction.
        assert "Not measured yet" in section(page, "drift")
        assert page.count('href="/models"') >= 1 and 'aria-current="page">Models' in page

    def test_live_accuracy_beside_validation(self, admin_client: TestClient, db: Session) -> None:
        made = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
        result = service.predict(db, now=made)
        assert service.mature_outcomes(db, now=datetime(2026, 6, 1, tzinfo=UTC)) == result.accounts
        db.commit()
        live = service.live_accuracy(db, service.get_model(db, 1))
        report = section(admin_client.get("/models").text, "report")
        assert row_cells(report, "ROC AUC")[3] == fmt(live["roc_auc"])
        assert row_cells(report, "Churns")[3] == fmt(live["churns"])
        assert f"{result.accounts:,} matured predictions" in report

    def test_drift_flags_features_over_the_threshold(
        self, admin_client: TestClient, db: Session, predicted: service.PredictResult
    ) -> None:
        model = service.get_model(db, 1)
        assert model.drift is not None
        psi = dict(model.drift["psi"])
        psi.update(mrr=0.61, days_since_seen=0.3, tenure_days=0.05)
        model.drift = {
            **model.drift,
            "psi": psi,
            "flagged": sorted(k for k, v in psi.items() if v > 0.25),
        }
        db.commit()
        drift = section(admin_client.get("/models").text, "drift")
        assert "2026-06-15" in drift and "over 0.25 has drifted" in drift
        flagged = drift[drift.index('id="drift-flagged"') :]
        flagged = flagged[: flagged.index("</p>")]
        for name in model.drift["flagged"]:
            assert f"<code>{name}</code>" in flagged
        assert "<code>tenure_days</code>" not in flagged
        rows = re.findall(r'<tr( class="drifted")?><td><code>(\w+)</code>', drift)
        marks = {name: bool(mark) for mark, name in rows}
        assert len(marks) == len(psi)
        assert marks["mrr"] and marks["days_since_seen"] and not marks["tenure_days"]
        assert "0.610" in drift

    def test_activate_button_for_admins_only(self, client: TestClient, db: Session) -> None:
        copy_model(db, 2)
        log_in_as(client, db, "admin")
        page = client.get("/models").text
        assert activate_forms(page) == ["2"]  # not the active v1
        versions = section(page, "versions")
        assert "v1" in versions and "v2" in versions and "candidate" in versions
        for role in ("csm", "viewer"):
            client.cookies.clear()
            log_in_as(client, db, role)
            page = client.get("/models").text
            assert "Model v1" in page and activate_forms(page) == []

    def test_activation_switches_the_active_model(
        self, admin_client: TestClient, db: Session
    ) -> None:
        copy_model(db, 2)
        token = csrf(admin_client, "/models")
        done = admin_client.post("/models/2/activate", data={"csrf": token}, follow_redirects=False)
        assert done.status_code == 303 and done.headers["location"] == "/models?done=activated"
        assert statuses(db) == {1: "retired", 2: "active"}
        page = admin_client.get("/models?done=activated").text
        assert "Activated: predictions use this model" in page
        assert "Model v2" in section(page, "report")
        assert activate_forms(page) == ["1"]

    def test_activation_refused_without_the_form_token_or_for_a_viewer(
        self, client: TestClient, db: Session
    ) -> None:
        copy_model(db, 2)
        log_in_as(client, db, "admin")
        forged = client.post("/models/2/activate", data={"csrf": "forged"})
        assert forged.status_code == 403
        assert client.post("/models/2/activate").status_code == 403
        client.cookies.clear()
        log_in_as(client, db, "viewer")
        token = csrf(client, "/models")
        refused = client.post("/models/2/activate", data={"csrf": token})
        assert refused.status_code == 403 and "only administrators" in refused.text
        assert statuses(db) == {1: "active", 2: "candidate"}

    def test_corrupted_model_is_not_activated(self, admin_client: TestClient, db: Session) -> None:
        copy_model(db, 2)
        db.execute(update(ChurnModel).where(ChurnModel.version == 2).values(model_text="x"))
        db.commit()
        token = csrf(admin_client, "/models")
        response = admin_client.post("/models/2/activate", data={"csrf": token})
        assert response.status_code == 503
        assert "churn model v2 is corrupted" in response.text
        assert 'role="alert"' in response.text and "Model v1" in response.text
        assert statuses(db) == {1: "active", 2: "candidate"}

    def test_any_version_has_its_page(self, admin_client: TestClient, db: Session) -> None:
        copy_model(db, 2)
        page = admin_client.get("/models/2").text
        report = section(page, "report")
        assert "Model v2" in report and "candidate" in report
        assert "kept as a candidate (not activated on request)" in report
        assert admin_client.get("/models/9").status_code == 404

    def test_no_active_model_and_no_model(self, admin_client: TestClient, db: Session) -> None:
        db.execute(update(ChurnModel).values(status="retired"))
        db.commit()
        page = admin_client.get("/models").text
        assert "No active model" in page and activate_forms(page) == ["1"]
        db.execute(delete(ChurnModel))
        db.commit()
        page = admin_client.get("/models").text
        assert "No churn model yet" in page and "<code>tenure churn train</code>" in page
        assert 'id="report"' not in page
        portfolio = section(admin_client.get("/").text, "churn-risk")
        assert "No churn model is active" in portfolio and "tenure churn train" in portfolio


def _top_account(db: Session) -> Account:
    rows, _ = service.at_risk(db, limit=1)
    return rows[0]


class TestAccountPanel:
    def test_panel_shows_the_stored_prediction(
        self, admin_client: TestClient, db: Session, predicted: service.PredictResult
    ) -> None:
        account = _top_account(db)
        prediction = service.latest_prediction(db, account.id)
        assert prediction is not None and prediction.factors
        panel = section(admin_client.get(f"/accounts/{account.id}").text, "churn")
        assert f"{100 * prediction.probability:.1f}%" in panel
        assert f"churn-{prediction.risk_level}" in panel
        assert money(prediction.mrr_at_risk_cents, "USD") in panel
        assert f"within {prediction.horizon_days} days" in panel
        assert '<a href="/models/1">v1</a>' in panel and "15 Jun 2026" in panel
        for factor in prediction.factors:
            text = re.escape(str(escape(factor["text"])))
            item = re.search(
                rf'<li class="(\w+)"><span class="direction"[^>]*>(.)</span><span>{text}</span>',
                panel,
            )
            assert item, factor["text"]
            raises = factor["contribution"] > 0
            assert item.groups() == (("raises", "▲") if raises else ("lowers", "▼"))
        # One prediction so far: one dot on the history chart.
        assert panel.count('<circle class="trend-dot"') == 1
        assert "Predict now" in panel

    def test_history_grows_with_each_day(self, admin_client: TestClient, db: Session) -> None:
        account = db.scalar(select(Account).where(Account.status == "active").limit(1))
        assert account is not None
        for days in (14, 7, 0):
            service.predict_account(db, account.id, now=NOW - timedelta(days=days))
        db.commit()
        panel = section(admin_client.get(f"/accounts/{account.id}").text, "churn")
        assert panel.count('<circle class="trend-dot"') == 3
        assert "3 predictions" in panel

    def test_empty_state_then_predict_now_with_htmx(
        self, admin_client: TestClient, db: Session
    ) -> None:
        account = db.scalar(select(Account).where(Account.status == "active").limit(1))
        assert account is not None
        page = admin_client.get(f"/accounts/{account.id}").text
        panel = section(page, "churn")
        assert "No churn prediction yet" in panel and "model v1" in panel
        assert 'hx-post="/accounts/' in panel
        token = csrf(admin_client, f"/accounts/{account.id}")
        response = admin_client.post(
            f"/accounts/{account.id}/churn/predict", data={"csrf": token}, headers=HX
        )
        assert response.status_code == 200
        assert "<html" not in response.text and 'id="churn"' in response.text
        db.rollback()
        stored = service.latest_prediction(db, account.id)
        assert stored is not None and stored.as_of == datetime(2026, 6, 15, tzinfo=UTC)
        assert f"{100 * stored.probability:.1f}%" in response.text
        assert "Predicted now" in response.text

    def test_predict_now_without_htmx_comes_back_to_the_page(
        self, admin_client: TestClient, db: Session
    ) -> None:
        account = db.scalar(select(Account).where(Account.status == "active").limit(1))
        assert account is not None
        token = csrf(admin_client, f"/accounts/{account.id}")
        done = admin_client.post(
            f"/accounts/{account.id}/churn/predict", data={"csrf": token}, follow_redirects=False
        )
        assert done.status_code == 303
        assert done.headers["location"] == f"/accounts/{account.id}?done=predicted#churn"
        page = admin_client.get(f"/accounts/{account.id}?done=predicted").text
        assert "Predicted now: the churn panel shows the new prediction." in page
        db.rollback()
        assert service.latest_prediction(db, account.id) is not None

    def test_predict_now_refused_for_viewers_and_forged_forms(
        self, client: TestClient, db: Session
    ) -> None:
        account = db.scalar(select(Account).where(Account.status == "active").limit(1))
        assert account is not None
        log_in_as(client, db, "viewer")
        page = client.get(f"/accounts/{account.id}").text
        assert "No churn prediction yet" in section(page, "churn")
        assert "Predict now" not in page
        token = csrf(client, f"/accounts/{account.id}")
        assert (
            client.post(f"/accounts/{account.id}/churn/predict", data={"csrf": token}).status_code
            == 403
        )
        client.cookies.clear()
        log_in_as(client, db, "csm")
        forged = client.post(f"/accounts/{account.id}/churn/predict", data={"csrf": "x"})
        assert forged.status_code == 403
        assert service.latest_prediction(db, account.id) is None

    @pytest.mark.parametrize("problem", ["no active model", "corrupted"])
    def test_predict_now_says_why_it_cannot(
        self, admin_client: TestClient, db: Session, problem: str
    ) -> None:
        account = db.scalar(select(Account).where(Account.status == "active").limit(1))
        assert account is not None
        if problem == "corrupted":
            db.execute(update(ChurnModel).values(model_text="tree\nnot a model"))
            message, status = "churn model v1 is corrupted", 503
        else:
            db.execute(update(ChurnModel).values(status="retired"))
            message, status = "no active churn model: train one with", 409
        db.commit()
        page = admin_client.get(f"/accounts/{account.id}").text
        if problem == "no active model":
            assert "No churn model is active" in section(page, "churn")
        token = csrf(admin_client, f"/accounts/{account.id}")
        swapped = admin_client.post(
            f"/accounts/{account.id}/churn/predict", data={"csrf": token}, headers=HX
        )
        assert swapped.status_code == 200 and message in swapped.text
        assert 'role="alert"' in swapped.text
        plain = admin_client.post(f"/accounts/{account.id}/churn/predict", data={"csrf": token})
        assert plain.status_code == status
        assert message in section(plain.text, "churn")
        assert service.latest_prediction(db, account.id) is None

    def test_churned_account_has_no_button(self, admin_client: TestClient, db: Session) -> None:
        gone = db.scalar(select(Account).where(Account.status == "churned").limit(1))
        assert gone is not None
        panel = section(admin_client.get(f"/accounts/{gone.id}").text, "churn")
        assert "No churn prediction yet" in panel and "Predict now" not in panel


class TestAtRiskList:
    def test_ordered_by_mrr_at_risk_and_paged(
        self, admin_client: TestClient, db: Session, predicted: service.PredictResult
    ) -> None:
        expected, total = service.at_risk(db, limit=100)
        assert total > 50
        page = admin_client.get("/churn/at-risk").text
        ids = linked_ids(page)
        assert ids == [str(a.id) for a in expected[:50]]
        assert f"1 to 50 of {total:,} accounts" in page
        top = expected[0]
        assert money(top.churn_mrr_at_risk_cents, "USD") in page
        assert f"{100 * (top.churn_probability or 0):.1f}%" in page
        assert 'rel="next"' in page and 'rel="prev"' not in page
        second = admin_client.get("/churn/at-risk?offset=50", headers=HX).text
        assert "<html" not in second
        assert linked_ids(second) == [str(a.id) for a in expected[50:100]]
        assert 'rel="prev"' in second and "51 to " in second

    def test_filter_by_band_and_owner(self, client: TestClient, db: Session) -> None:
        # Band edges at the quartiles of this run's probabilities: every band has accounts
        # whatever the simulated business's model predicts.
        service.predict(db, now=NOW)
        ps = sorted(a.churn_probability or 0 for a in service.at_risk(db, limit=200)[0])
        edges = [ps[len(ps) * k // 4] for k in (1, 2, 3)]
        service.predict(db, now=NOW, edges=edges)
        db.commit()
        csm = log_in_as(client, db, "csm")
        chosen, n_chosen = service.at_risk(db, levels=["high", "critical"], limit=200)
        assert 0 < n_chosen < len(ps)
        for query in ("risk=high&risk=critical", "risk=high,critical"):
            page = client.get(f"/churn/at-risk?{query}").text
            assert linked_ids(page) == [str(a.id) for a in chosen[:50]]
            bands = re.findall(r'class="badge churn-band churn-(\w+)"', page)
            assert set(bands) == {"high", "critical"}
            assert 'value="high" checked' in page and 'value="critical" checked' in page
            assert 'value="low" checked' not in page
        everyone, _ = service.at_risk(db, limit=200)
        mine = [everyone[5], everyone[2], everyone[9]]
        db.execute(update(Account).where(Account.id.in_([a.id for a in mine])).values(owner_id=csm))
        db.commit()
        expected = [str(a.id) for a in sorted(mine, key=lambda a: everyone.index(a))]
        for owner in (str(csm), "me"):
            page = client.get(f"/churn/at-risk?owner={owner}").text
            assert linked_ids(page) == expected
            assert "3 accounts" in page and "csm@example.com</td>" in page
        assert client.get("/churn/at-risk?risk=huge").status_code == 422

    def test_empty_before_any_prediction(self, admin_client: TestClient) -> None:
        page = admin_client.get("/churn/at-risk").text
        assert "No live account has a churn prediction yet" in page
        assert "0 accounts" in page

    def test_names_are_escaped(
        self, admin_client: TestClient, db: Session, predicted: service.PredictResult
    ) -> None:
        account = _top_account(db)
        db.execute(
            update(Account)
            .where(Account.id == account.id)
            .values(name="<script>x</script>", name_lower="<script>x</script>")
        )
        db.commit()
        for path in ("/churn/at-risk", "/", f"/accounts/{account.id}"):
            page = admin_client.get(path).text
            assert "<script>x</script>" not in page, path
            assert "&lt;script&gt;x&lt;/script&gt;" in page, path


class TestPortfolio:
    def test_top_ten_by_mrr_at_risk(
        self, admin_client: TestClient, db: Session, predicted: service.PredictResult
    ) -> None:
        expected, total = service.at_risk(db, limit=10)
        panel = section(admin_client.get("/").text, "churn-risk")
        assert linked_ids(panel) == [str(a.id) for a in expected]
        assert f'<a href="/churn/at-risk">All {total:,} predicted accounts' in panel
        assert 'href="/models"' in panel

    def test_model_but_no_prediction_yet(self, admin_client: TestClient) -> None:
        panel = section(admin_client.get("/").text, "churn-risk")
        assert "No live account has a churn prediction yet" in panel and "v1" in panel
