"""`gigawatt usage` reads the same state as `serve` and `keys`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from gigawatt.cli import main
from gigawatt.keys import open_key_store
from gigawatt.limits import Limiter, Usage, open_store
from gigawatt.policy.load import load_policy

POLICY = Path(__file__).parents[2] / "examples" / "policy.toml"


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    text = POLICY.read_text().replace('state = "memory://"', f'state = "sqlite:///{tmp_path}/s.db"')
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return path


def test_usage_shows_what_the_account_used(
    policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = load_policy(policy_file)
    keys = open_key_store(policy.gateway.state)
    keys.create("carol", "pro", 0.0)
    keys.close()
    limiter = Limiter(policy, open_store(policy.gateway.state))
    decision = limiter.admit("carol", "pro", "small", Usage(1000, 100), time.time())
    assert decision.reservation is not None
    limiter.reconcile(decision.reservation, Usage(1000, 100), time.time())
    limiter.close()
    assert main(["usage", "--account", "carol", "--config", str(policy_file), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["plan"] == "pro"
    session = next(r for r in report["limits"] if r["name"] == "session-5h")
    assert session["used"] == 1000 * 1 + 100 * 5
    assert main(["usage", "--account", "carol", "--config", str(policy_file)]) == 0
    assert "5-hour limit" in capsys.readouterr().out


def test_usage_of_an_account_without_keys_needs_a_plan(
    policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["usage", "--account", "dave", "--config", str(policy_file)]) == 2
    assert "has no active keys; name one with --plan" in capsys.readouterr().err
    assert main(["usage", "--account", "dave", "--plan", "gold", "--config", str(policy_file)]) == 2
    assert "unknown plan 'gold'" in capsys.readouterr().err
    assert main(["usage", "--account", "dave", "--plan", "free", "--config", str(policy_file)]) == 0
