"""tenure churn ...: train and evaluate churn models, the registry, predictions."""

from __future__ import annotations

from datetime import UTC, date, datetime
from datetime import time as clock_time
from typing import Annotated, Any, Literal

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tenure.accounts import service as accounts_service
from tenure.churn.metrics import REPORT_MODELS, REPORT_ROWS
from tenure.churn.models import ChurnModel
from tenure.cli.common import cli_errors, console, fail, load_settings, ready_engine, unit_of_work
from tenure.clock import SystemClock
from tenure.ingest.catalogue import load_catalogue
from tenure.kit.actor import Actor

app = typer.Typer(
    help="""Churn prediction.

\b
  tenure churn train [--horizon 60] [--no-activate | --activate]
                            build the point-in-time dataset, train LightGBM and the
                            baselines, print the validation report, store the model
  tenure churn models       the registry: every version, the active one marked
  tenure churn show 3       one model's report (validation and live accuracy, drift)
  tenure churn activate 3   make version 3 the one predictions use
  tenure churn predict [--account ID]
                            predict every live account now (or one), print the top risks
  tenure churn outcomes     record the outcomes of predictions whose horizon has passed
""",
    no_args_is_help=True,
)

MODELS = [(key, short) for key, _, short in REPORT_MODELS]
ROWS = REPORT_ROWS


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.3f}"


def report(model: ChurnModel, live: dict[str, Any] | None = None) -> None:
    """The validation report: the model beside its baselines, calibration, importance."""
    t = model.training
    threshold = t.get("threshold", 0.25)
    console.print(
        f"Model v{model.version} ({model.status}), trained {model.created_at:%Y-%m-%d %H:%M} "
        f"UTC by {model.created_by}: churn within {t.get('horizon_days')} days "
        f"(grace {t.get('grace_days')} days), alert threshold {threshold:g}",
        markup=False,
        soft_wrap=True,
    )
    for name in ("train", "calibration", "validation"):
        part = t.get(name, {})
        if part:
            console.print(
                f"  {name}: {part['snapshots']} snapshot(s) {part['from'][:10]} .. "
                f"{part['to'][:10]}, {part['examples']:,} examples, {part['churns']:,} churns",
                markup=False,
            )
    metrics = model.metrics
    table = Table("validation (out of time)", *(label for _, label in MODELS))
    if live is not None:
        table.add_column("LightGBM live")
    for key, label in ROWS:
        cells = [_fmt(metrics.get(m, {}).get(key)) for m, _ in MODELS]
        if live is not None:
            cells.append(_fmt(live.get(key)))
        table.add_row(label, *cells)
    console.print(table)
    calibration = Table(
        "probability bin",
        "mean predicted",
        "observed rate",
        "examples",
        title="Calibration (LightGBM, validation)",
    )
    for row in metrics.get("lightgbm", {}).get("calibration", []):
        k = row["bin"]
        calibration.add_row(
            f"{k / 10:.1f} - {(k + 1) / 10:.1f}",
            f"{row['predicted']:.3f}",
            f"{row['observed']:.3f}",
            f"{row['count']:,}",
        )
    console.print(calibration)
    importance = Table("feature", "share of gain", title="Most important features")
    for name, share in list(metrics.get("importance", {}).items())[:10]:
        importance.add_row(name, f"{share:.1%}")
    console.print(importance)
    if model.note:
        console.print(model.note, markup=False, soft_wrap=True)


@app.command()
@cli_errors
def train(
    horizon: Annotated[
        int | None,
        typer.Option(min=7, max=365, help="Days ahead (default TENURE_CHURN_HORIZON_DAYS)"),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="First snapshot (YYYY-MM-DD); default 90 days into the data")
    ] = None,
    activate: Annotated[
        bool | None,
        typer.Option(
            "--activate/--no-activate",
            help="Activate whatever the result / keep as a candidate (default: activate if "
            "it is the first model or not worse on validation than the active one)",
        ),
    ] = None,
) -> None:
    """Train a model on every snapshot with a matured label, print its report, store it."""
    # Imported here: LightGBM and scikit-learn take a second to load, other commands
    # should not wait for them.
    from tenure.churn import service

    settings = load_settings()
    start = None
    if since is not None:
        try:
            start = datetime.combine(date.fromisoformat(since), clock_time.min, tzinfo=UTC)
        except ValueError:
            raise fail(f"--since {since!r} is not an ISO date (YYYY-MM-DD)") from None
    promote: Literal["auto", "always", "never"] = (
        "auto" if activate is None else ("always" if activate else "never")
    )
    now = SystemClock().now()
    with (
        Progress(
            TextColumn("snapshots"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar,
        unit_of_work(ready_engine(settings)) as session,
    ):
        task = bar.add_task("snapshots", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = service.train_model(
            session,
            now=now,
            actor=Actor.cli(),
            horizon_days=horizon or settings.churn_horizon_days,
            grace_days=settings.churn_grace_days,
            since=start,
            valid_count=settings.churn_validation_snapshots,
            min_churns=settings.churn_min_churns,
            threshold=settings.churn_alert_threshold,
            promote=promote,
            catalogue=load_catalogue(settings.metric_catalogue),
            progress=progress,
        )
        bar.stop()
        report(result.model)
        seconds = result.seconds
        console.print(
            f"Dataset built in {seconds.get('dataset', 0):.1f} s, models trained in "
            f"{seconds.get('train', 0):.1f} s.",
            markup=False,
        )


@app.command()
@cli_errors
def models() -> None:
    """Every model, newest first: validation ROC AUC beside the baselines', live figures."""
    from tenure.churn import service

    with unit_of_work(ready_engine(load_settings())) as session:
        rows = service.models(session)
        counts = service.prediction_counts(session)
        if not rows:
            console.print("No churn model yet: run 'tenure churn train'.")
            return
        table = Table(
            "version",
            "status",
            "trained",
            "ROC AUC",
            "LR",
            "health",
            "lift",
            "validation",
            "predictions",
            "matured",
        )
        for m in rows:
            lg = m.metrics.get("lightgbm", {})
            made, matured = counts.get(m.id, (0, 0))
            v = m.training.get("validation", {})
            table.add_row(
                f"v{m.version}",
                ("* " if m.status == "active" else "") + m.status,
                f"{m.created_at:%Y-%m-%d %H:%M}",
                _fmt(lg.get("roc_auc")),
                _fmt(m.metrics.get("logistic_regression", {}).get("roc_auc")),
                _fmt(m.metrics.get("health_score", {}).get("roc_auc")),
                _fmt(lg.get("lift_top_decile")),
                f"{v.get('from', '')[:10]} .. {v.get('to', '')[:10]}",
                f"{made:,}",
                f"{matured:,}",
            )
        console.print(table)


@app.command()
@cli_errors
def show(version: Annotated[int, typer.Argument(min=1, help="Model version")]) -> None:
    """One model's report, with its live accuracy and the latest drift figures."""
    from tenure.churn import service

    with unit_of_work(ready_engine(load_settings())) as session:
        model = service.get_model(session, version)
        report(model, live=service.live_accuracy(session, model))
        drift = model.drift
        if drift:
            flagged = drift.get("flagged", [])
            console.print(
                f"Drift as of {drift['as_of'][:10]}: "
                + (
                    f"PSI over {drift['threshold']} for {', '.join(flagged)}"
                    if flagged
                    else "no feature over the PSI threshold"
                ),
                markup=False,
                soft_wrap=True,
            )


@app.command()
@cli_errors
def activate(version: Annotated[int, typer.Argument(min=1, help="Model version")]) -> None:
    """Make this version the one predictions use (it must load)."""
    from tenure.churn import service

    with unit_of_work(ready_engine(load_settings())) as session:
        model = service.activate(session, version, actor=Actor.cli(), now=SystemClock().now())
        console.print(f"Churn model v{model.version} is active.")


@app.command()
@cli_errors
def predict(
    account: Annotated[str | None, typer.Option(help="External id of one account")] = None,
    top: Annotated[int, typer.Option(min=1, max=200, help="Accounts to list")] = 10,
) -> None:
    """Predict now with the active model, store the predictions, list the top risks."""
    from tenure.churn import service

    settings = load_settings()
    now = SystemClock().now()
    kwargs: dict[str, Any] = {
        "catalogue": load_catalogue(settings.metric_catalogue),
        "edges": settings.churn_bands,
        "threshold": settings.churn_alert_threshold,
    }
    with unit_of_work(ready_engine(settings)) as session:
        if account:
            found = accounts_service.get_account_by_external_id(session, account)
            if found is None:
                raise fail(f"no account with external id {account!r}")
            p = service.predict_account(session, found.id, now=now, **kwargs)
            console.print(
                f"{found.name} ({account}): churn probability {p.probability:.1%} within "
                f"{p.horizon_days} days, {p.risk_level}; MRR at risk "
                f"{p.mrr_at_risk_cents / 100:,.2f} {settings.reporting_currency}",
                markup=False,
                soft_wrap=True,
            )
            for f in p.factors:
                console.print(f"  - {f['text']}", markup=False, soft_wrap=True)
            return
        result = service.predict(session, now=now, **kwargs)
        console.print(
            f"Predicted {result.accounts:,} accounts with model v{result.model_version} as of "
            f"{result.as_of:%Y-%m-%d}: {result.flagged:,} at or over the alert threshold, "
            f"{result.announced:,} risk level changes announced.",
            markup=False,
        )
        if result.drift_flagged:
            console.print(
                "Drift (PSI > 0.25): " + ", ".join(result.drift_flagged),
                markup=False,
                soft_wrap=True,
            )
        rows, _ = service.at_risk(session, limit=top)
        table = Table("account", "probability", "risk", "MRR at risk", title="Most MRR at risk")
        for a in rows:
            table.add_row(
                a.name,
                f"{(a.churn_probability or 0):.1%}",
                a.churn_risk or "",
                f"{(a.churn_mrr_at_risk_cents or 0) / 100:,.2f} {settings.reporting_currency}",
            )
        console.print(table)


@app.command()
@cli_errors
def outcomes() -> None:
    """Record the outcomes of predictions whose horizon (and grace period) has passed."""
    from tenure.churn import service

    settings = load_settings()
    with unit_of_work(ready_engine(settings)) as session:
        n = service.mature_outcomes(
            session, now=SystemClock().now(), grace_days=settings.churn_grace_days
        )
    console.print(f"Recorded {n:,} outcomes.")
