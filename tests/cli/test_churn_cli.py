"""tenure churn ...: training, the registry and predictions from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tenure.churn.models import ChurnModel, ChurnPrediction
from tenure.cli import app

runner = CliRunner()


@pytest.fixture
def database_url(simulated_database_url: str) -> str:
    return simulated_database_url


def run(args: list[str], database_url: str, tmp_path: Path, **env: str) -> Result:
    environment = {
        "TENURE_DATABASE_URL": database_url,
        "TENURE_DATA_DIR": str(tmp_path / "data"),
        "TENURE_CHURN_MIN_CHURNS": "10",
        "COLUMNS": "200",
        **env,
    }
    return runner.invoke(app, args, env=environment, prog_name="tenure")


def one_error_line(result: Result, text: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert text in lines[0]


def test_train_prints_the_report_and_stores_the_model(
    database_url: str, tmp_path: Path, db: Session
) -> None:
    result = run(["churn", "train"], database_url, tmp_path)
    assert result.exit_code == 0, result.output
    out = result.output
    for text in (
        "LightGBM",
        "Logistic reg.",
        "Health score",
        "ROC AUC",
        "Brier score",
        "Lift, top decile",
        "Calibration",
        "Most important features",
    ):
        assert text in out
    assert "Model v2 (active)" in out and "not worse than" in out
    model = db.scalar(select(ChurnModel).where(ChurnModel.version == 2))
    assert model is not None and f"{model.metrics['lightgbm']['roc_auc']:.3f}" in out

    listed = run(["churn", "models"], database_url, tmp_path)
    assert listed.exit_code == 0 and "v2" in listed.output and "* active" in listed.output
    shown = run(["churn", "show", "1"], database_url, tmp_path)
    assert shown.exit_code == 0 and "Model v1 (retired)" in shown.output
    assert "LightGBM live" in shown.output

    activated = run(["churn", "activate", "1"], database_url, tmp_path)
    assert activated.exit_code == 0 and "v1 is active" in activated.output


def test_no_activate_keeps_a_candidate(database_url: str, tmp_path: Path, db: Session) -> None:
    result = run(["churn", "train", "--no-activate"], database_url, tmp_path)
    assert result.exit_code == 0, result.output
    assert "kept as a candidate" in result.output
    assert db.scalar(select(ChurnModel.status).where(ChurnModel.version == 2)) == "candidate"


def test_bad_input_is_one_line_and_exit_2(database_url: str, tmp_path: Path, db: Session) -> None:
    few = run(["churn", "train"], database_url, tmp_path, TENURE_CHURN_MIN_CHURNS="100000")
    one_error_line(few, "not enough churn examples to train")
    assert db.scalar(select(func.count()).select_from(ChurnModel)) == 1
    one_error_line(run(["churn", "activate", "5"], database_url, tmp_path), "no churn model v5")
    one_error_line(
        run(["churn", "train", "--since", "June"], database_url, tmp_path), "not an ISO date"
    )
    one_error_line(
        run(["churn", "predict", "--account", "nope"], database_url, tmp_path),
        "no account with external id 'nope'",
    )
    db.execute(update(ChurnModel).values(model_text="corrupted"))
    db.commit()
    one_error_line(run(["churn", "predict"], database_url, tmp_path), "churn model v1 is corrupted")


def test_predict_lists_the_top_risks(database_url: str, tmp_path: Path, db: Session) -> None:
    result = run(["churn", "predict", "--top", "5"], database_url, tmp_path)
    assert result.exit_code == 0, result.output
    assert "with model v1" in result.output and "Most MRR at risk" in result.output
    made = db.scalar(select(func.count()).select_from(ChurnPrediction))
    assert made and f"Predicted {made:,} accounts" in result.output
    outcomes = run(["churn", "outcomes"], database_url, tmp_path)
    assert outcomes.exit_code == 0 and "Recorded" in outcomes.output
