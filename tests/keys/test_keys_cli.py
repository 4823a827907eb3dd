"""`gigawatt keys`: the secret is printed once at creation and never again, by anything."""

from __future__ import annotations

import argparse
import importlib.resources
import json
import re
from pathlib import Path

import pytest

from gigawatt.keys import digest_of, open_key_store
from gigawatt.keys.cli import add_keys

SECRET = re.compile(r"gw-[A-Za-z0-9_-]{43}")
KEY_ID = re.compile(r"key_[0-9a-f]{8}")
DEFAULT_STATE = 'state = "sqlite:///./.gigawatt/state.db"'


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="gigawatt")
    add_keys(parser.add_subparsers())
    args = parser.parse_args(["keys", *argv])
    code: int = args.run(args)
    return code


def _policy_with_state(tmp_path: Path, state: str) -> Path:
    resource = importlib.resources.files("gigawatt") / "data" / "default_policy.toml"
    text = resource.read_text(encoding="utf-8")
    assert DEFAULT_STATE in text
    path = tmp_path / "policy.toml"
    path.write_text(text.replace(DEFAULT_STATE, f'state = "{state}"'), encoding="utf-8")
    return path


@pytest.fixture
def state_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


@pytest.fixture
def config(tmp_path: Path, state_url: str) -> str:
    return str(_policy_with_state(tmp_path, state_url))


def _create(config: str, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    assert run("create", "--config", config, "--account", "alice", "--plan", "pro", *extra) == 0
    out = capsys.readouterr().out
    return SECRET.findall(out)[0]


def test_create_prints_the_secret_once_on_stdout_only(
    config: str, state_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run("create", "--config", config, "--account", "alice", "--plan", "pro", "--label", "ci")
    assert code == 0
    captured = capsys.readouterr()
    secrets = SECRET.findall(captured.out)
    assert len(secrets) == 1
    assert captured.out.count(secrets[0]) == 1
    assert "gw-" not in captured.err
    key_ids = KEY_ID.findall(captured.out)
    assert key_ids
    store = open_key_store(state_url)
    try:
        record = store.authenticate(secrets[0])
    finally:
        store.close()
    assert record is not None
    assert (record.key_id, record.account, record.plan, record.label) == (
        key_ids[0],
        "alice",
        "pro",
        "ci",
    )


def test_quiet_create_prints_only_the_secret(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("create", "--config", config, "--account", "alice", "--plan", "pro", "--quiet")
    assert run(*args) == 0
    captured = capsys.readouterr()
    assert SECRET.fullmatch(captured.out.removesuffix("\n"))
    assert captured.err == ""


def test_list_never_shows_a_secret_or_digest(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = _create(config, capsys, "--label", "laptop")
    other = _create(config, capsys)
    for extra in ((), ("--json",), ("--account", "alice"), ("--account", "alice", "--json")):
        assert run("list", "--config", config, *extra) == 0
        captured = capsys.readouterr()
        for s in (secret, other):
            for shown in (captured.out, captured.err):
                assert s not in shown
                assert s[3:] not in shown
                assert digest_of(s) not in shown
        assert "gw-" not in captured.out
    assert run("list", "--config", config, "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [k["account"] for k in listed] == ["alice", "alice"]
    assert [k["label"] for k in listed] == ["laptop", ""]
    assert set(listed[0]) == {"key_id", "account", "plan", "label", "created_at", "revoked_at"}


def test_list_shows_a_table_of_keys(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("list", "--config", config) == 0
    assert "No keys." in capsys.readouterr().out
    _create(config, capsys)
    assert run("list", "--config", config, "--json") == 0
    key_id = json.loads(capsys.readouterr().out)[0]["key_id"]
    assert run("list", "--config", config) == 0
    out = capsys.readouterr().out
    assert key_id in out
    assert "alice" in out
    assert "pro" in out
    assert run("list", "--config", config, "--account", "bob") == 0
    assert "No keys for 'bob'." in capsys.readouterr().out


def test_names_in_the_table_are_not_markup(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = ("create", "--config", config, "--account", "[bold]x", "--plan", "pro", "-q")
    assert run(*args, "--label", "[red]") == 0
    capsys.readouterr()
    assert run("list", "--config", config) == 0
    out = capsys.readouterr().out
    assert "[bold]x" in out
    assert "[red]" in out


def test_revoke_and_set_plan(
    config: str, state_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = _create(config, capsys)
    kept = _create(config, capsys)
    store = open_key_store(state_url)
    try:
        record = store.authenticate(secret)
        assert record is not None
        assert run("revoke", "--config", config, record.key_id) == 0
        assert f"Revoked {record.key_id}." in capsys.readouterr().out
        assert store.authenticate(secret) is None
        assert run("revoke", "--config", config, record.key_id) == 0
        assert "already revoked" in capsys.readouterr().out
        assert run("set-plan", "--config", config, "--account", "alice", "--plan", "team") == 0
        assert "Moved 2 keys of account 'alice' to plan 'team'." in capsys.readouterr().out
        moved = store.authenticate(kept)
        assert moved is not None
        assert moved.plan == "team"
    finally:
        store.close()


def test_create_notes_other_plans_of_the_account(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _create(config, capsys)
    assert run("create", "--config", config, "--account", "alice", "--plan", "free", "-q") == 0
    err = capsys.readouterr().err
    assert "other active keys on pro" in err
    assert "set-plan" in err


@pytest.mark.parametrize("action", ["create", "set-plan"])
def test_an_unknown_plan_exits_2_listing_the_plans(
    action: str, config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(action, "--config", config, "--account", "alice", "--plan", "platinum") == 2
    captured = capsys.readouterr()
    assert "unknown plan 'platinum'" in captured.err
    assert "free, pro," in captured.err
    assert captured.out == ""


def test_unknown_keys_and_accounts_exit_1(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("revoke", "--config", config, "key_00000000") == 1
    assert "no key 'key_00000000'" in capsys.readouterr().err
    assert run("set-plan", "--config", config, "--account", "nobody", "--plan", "pro") == 1
    assert "account 'nobody' has no keys" in capsys.readouterr().err


def test_an_empty_account_exits_2(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("create", "--config", config, "--account", "", "--plan", "pro") == 2
    assert "account name must not be empty" in capsys.readouterr().err


def test_a_bad_policy_exits_2_with_its_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[gateway]\nstate = 'postgres://db'\n", encoding="utf-8")
    assert run("list", "--config", str(bad)) == 2
    assert f"{bad}: gateway.state:" in capsys.readouterr().err
    assert run("list", "--config", str(tmp_path / "missing.toml")) == 2
    assert "no such file" in capsys.readouterr().err


def test_an_unusable_store_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    config = _policy_with_state(tmp_path, f"sqlite:///{blocker / 'state.db'}")
    assert run("list", "--config", str(config)) == 1
    assert "cannot open the key store" in capsys.readouterr().err


def test_without_config_the_default_policy_state_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run("create", "--account", "alice", "--plan", "pro", "--quiet") == 0
    secret = capsys.readouterr().out.strip()
    store = open_key_store("sqlite:///./.gigawatt/state.db")
    try:
        assert store.authenticate(secret) is not None
    finally:
        store.close()


def test_memory_state_warns_that_keys_do_not_last(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _policy_with_state(tmp_path, "memory://")
    assert run("create", "--config", str(config), "--account", "a", "--plan", "pro", "-q") == 0
    assert "memory://" in capsys.readouterr().err


def test_keys_alone_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run() == 2
    assert "create" in capsys.readouterr().err
