"""`gigawatt limiter-demo` drives the real limiter and reports refusals in plain words."""

from __future__ import annotations

from pathlib import Path

import pytest

from gigawatt.cli import main


def test_the_demo_shows_admissions_and_refusals(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["limiter-demo"]) == 0
    out = capsys.readouterr().out
    assert "admitted" in out
    assert "5-hour limit reached; resets at" in out
    assert "weekly limit for large reached" in out


def test_the_demo_runs_on_sqlite_state(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["limiter-demo", "--state", f"sqlite:///{tmp_path}/s.db", "--requests", "8"]) == 0
    assert "of 8 requests admitted" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--plan", "platinum"], "unknown plan 'platinum'"),
        (["--plan", "free", "--model", "large"], "plan 'free' has no model 'large'"),
        (["--requests", "0"], "--requests must be at least 1"),
        (["--state", "postgres://db"], "unknown state URL"),
    ],
)
def test_bad_demo_arguments_are_clear_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["limiter-demo", *args]) in (1, 2)
    assert message in capsys.readouterr().err
