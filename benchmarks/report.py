"""What every benchmark script writes its results with: markdown tables, its own section of
docs/benchmarks.md, and the commit the measured code is at."""

from __future__ import annotations

import datetime as dt
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def library_version() -> str:
    """The commit the measured code is at, and whether `src/` differs from it."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True)
        return done.stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--", "src")
    except (OSError, subprocess.CalledProcessError):
        return "an unknown commit"
    return f"commit {head}" + (" with uncommitted changes under src/" if dirty else "")


def run_stamp(script: str, argv: list[str] | None) -> tuple[str, str]:
    """The command line that reproduces this run (`argv` as `main` got it, or the process's),
    and the time it started, as the benchmark's section states them."""
    given = sys.argv[1:] if argv is None else argv
    command = shlex.join([".venv/bin/python", f"benchmarks/{script}", *given])
    return command, dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def md_table(columns: tuple[str, ...], body: list[list[str]], left: int = 1) -> list[str]:
    """A markdown table whose first `left` columns are left-aligned and the rest right-aligned."""
    lines = ["| " + " | ".join(columns) + " |"]
    lines.append("|" + "|".join("---" if i < left else "---:" for i in range(len(columns))) + "|")
    return lines + ["| " + " | ".join(row) + " |" for row in body]


def write_section(path: Path, section: str, start: str, end: str, after: str | None = None) -> None:
    """Replace the text between markers `start` and `end` with `section` (which carries them);
    if they are absent, add it after marker `after`, or at the end."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    i, j = text.find(start), text.find(end)
    if i != -1 and j > i:
        text = text[:i] + section.rstrip("\n") + text[j + len(end) :]
    elif after is not None and after in text:
        k = text.find(after) + len(after)
        text = text[:k] + "\n\n" + section.rstrip("\n") + text[k:]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
