from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tenure.cli.sim import app

runner = CliRunner()


def test_generates_the_files(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = runner.invoke(
        app, ["generate", "--accounts", "40", "--months", "3", "--seed", "1", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "Wrote 40 accounts" in result.stdout
    assert (out / "events.jsonl").stat().st_size > 0
    assert not (out / "truth.json").exists()


def test_refuses_a_non_empty_directory_without_force(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("keep me")
    (tmp_path / "accounts.csv").write_text("old")
    args = ["generate", "--accounts", "20", "--months", "2", "--out", str(tmp_path)]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2
    assert "not empty" in refused.stderr and "--force" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert (tmp_path / "accounts.csv").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["accounts.csv", "notes.txt"]

    forced = runner.invoke(app, [*args, "--force"])
    assert forced.exit_code == 0, forced.output
    assert (tmp_path / "accounts.csv").read_text().startswith("external_id,")
    assert (tmp_path / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    "args",
    [
        ["--accounts", "0"],
        ["--accounts", "-5"],
        ["--accounts", "50000000"],
        ["--months", "0"],
        ["--months", "1000"],
        ["--seed", "-1"],
        ["--end", "someday"],
    ],
)
def test_bad_sizes_exit_2_and_write_nothing(tmp_path: Path, args: list[str]) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["generate", "--out", str(out), *args])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("args", [["--accounts", "many"], ["--months", "1.5"], []])
def test_bad_option_types_exit_2(tmp_path: Path, args: list[str]) -> None:
    out_args = ["--out", str(tmp_path / "out")] if args else []
    result = runner.invoke(app, ["generate", *out_args, *args])
    assert result.exit_code == 2
    assert not (tmp_path / "out").exists()


def test_refuses_a_file_as_output(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    result = runner.invoke(app, ["generate", "--accounts", "5", "--out", str(target)])
    assert result.exit_code == 2 and target.read_text() == "x"
