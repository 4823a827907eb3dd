from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gigawatt.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "policy.toml"
PLANS = (
    "free",
    "pro",
    "max-5x",
    "max-20x",
    "team",
    "enterprise",
    "api-tier-1",
    "api-tier-2",
    "api-tier-3",
)


def misspelt_copy(tmp_path: Path) -> Path:
    text = EXAMPLE.read_text(encoding="utf-8")
    # The pro plan's first window: its `limit` becomes `limt`.
    original = (
        "[plans.pro]\npriority = 1\nrate = { rpm = 60 }\nwindows = [\n"
        '    { kind = "session", length = "5h", limit'
    )
    assert text.count(original) == 1
    path = tmp_path / "policy.toml"
    path.write_text(text.replace(original, original[: -len("limit")] + "limt"), encoding="utf-8")
    return path


def test_check_config_prints_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(EXAMPLE)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    for plan in PLANS:
        assert plan in out


def test_check_config_reports_a_misspelt_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = misspelt_copy(tmp_path)
    assert main(["check-config", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"{path}: plans.pro.windows[0].limt: unknown key 'limt'; did you mean 'limit'?",
        f"{path}: plans.pro.windows[0].limit: missing (required)",
        f"{path}: 2 problems",
    ]


def test_check_config_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "absent.toml"
    assert main(["check-config", str(path)]) == 2
    _, err = capsys.readouterr()
    assert f"{path}: no such file" in err


def test_check_config_invalid_toml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[plans.pro\n", encoding="utf-8")
    assert main(["check-config", str(path)]) == 2
    _, err = capsys.readouterr()
    assert err.startswith(f"{path}: not valid TOML:")
    assert "line 1" in err


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    _, err = capsys.readouterr()
    assert "check-config" in err


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["check-config"])
    assert info.value.code == 2
    capsys.readouterr()


def test_module_entry_point(tmp_path: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "gigawatt", "check-config", str(EXAMPLE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert all(plan in ok.stdout for plan in PLANS)

    bad = subprocess.run(
        [sys.executable, "-m", "gigawatt", "check-config", str(misspelt_copy(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert "plans.pro.windows[0].limt: unknown key 'limt'; did you mean 'limit'?" in bad.stderr
