"""Request traces as demand: a CSV of timestamp, input tokens, output tokens, optional account and
model, one row per request.

Column names are matched without regard to case, so the public Azure LLM inference traces
(`TIMESTAMP,ContextTokens,GeneratedTokens`) are read as they are published:

| field | accepted names |
|---|---|
| time | timestamp, time, arrival_time |
| input | input_tokens, contexttokens, prompt_tokens |
| output | output_tokens, generatedtokens, completion_tokens |
| account | account, account_id, user, user_id |
| model | model |

A time is epoch or relative seconds, or an ISO 8601 date-time (a naive one is read as UTC).
Only differences between times matter: the trace is replayed from the simulation's start.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, datetime
from os import PathLike

import numpy as np
import numpy.typing as npt

from gigawatt.errors import PolicyError, Problem
from gigawatt.policy.load import reading

_NAMES = {
    "time": ("timestamp", "time", "arrival_time"),
    "input": ("input_tokens", "contexttokens", "prompt_tokens"),
    "output": ("output_tokens", "generatedtokens", "completion_tokens"),
    "account": ("account", "account_id", "user", "user_id"),
    "model": ("model",),
}
_MAX_PROBLEMS = 20


@dataclass(frozen=True, slots=True)
class Trace:
    """Rows sorted by time; `offset_s` counts from the first row."""

    offset_s: npt.NDArray[np.float64]
    input_tokens: npt.NDArray[np.int64]
    output_tokens: npt.NDArray[np.int64]
    accounts: tuple[str, ...] | None  # per row, when the trace names them
    models: tuple[str, ...] | None

    def __len__(self) -> int:
        return len(self.offset_s)


def read_trace(path: str | PathLike[str]) -> Trace:
    """Read a trace CSV; PolicyError naming each bad line (the first 20) if any is unusable."""
    with reading(path) as source, open(path, newline="", encoding="utf-8") as handle:
        return _parse(csv.reader(handle), source)


def _parse(rows: object, source: str) -> Trace:
    reader = iter(rows)  # type: ignore[call-overload]
    header = next(reader, None)
    if header is None:
        raise PolicyError(source, [Problem("line 1", "empty file: expected a header row")])
    columns = _columns([h.strip().lower() for h in header])
    missing = [f for f in ("time", "input", "output") if f not in columns]
    if missing:
        accepted = "; ".join(f"{f}: {' or '.join(_NAMES[f])}" for f in missing)
        raise PolicyError(source, [Problem("line 1", f"header lacks a column for {accepted}")])
    problems: list[Problem] = []
    times: list[float] = []
    inputs: list[int] = []
    outputs: list[int] = []
    accounts: list[str] = []
    models: list[str] = []
    it, ii, io = columns["time"], columns["input"], columns["output"]
    ia, im = columns.get("account"), columns.get("model")
    width = max(columns.values()) + 1
    for line, row in enumerate(reader, start=2):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) < width:
            problems.append(Problem(f"line {line}", f"expected {width} columns, got {len(row)}"))
        else:
            t = _time(row[it])
            n_in, n_out = _tokens(row[ii]), _tokens(row[io])
            if t is None:
                problems.append(Problem(f"line {line}", f"unreadable time {row[it]!r}"))
            elif n_in is None or n_out is None:
                bad = row[ii] if n_in is None else row[io]
                problems.append(Problem(f"line {line}", f"expected a token count, got {bad!r}"))
            else:
                times.append(t)
                inputs.append(n_in)
                outputs.append(n_out)
                if ia is not None:
                    accounts.append(row[ia].strip())
                if im is not None:
                    models.append(row[im].strip())
        if len(problems) >= _MAX_PROBLEMS:
            break
    if problems:
        raise PolicyError(source, problems)
    if not times:
        raise PolicyError(source, [Problem("", "no requests: the file has a header only")])
    order = np.argsort(np.asarray(times), kind="stable")
    t = np.asarray(times)[order]

    def pick(values: list[str]) -> tuple[str, ...] | None:
        return tuple(values[i] for i in order) if values else None

    return Trace(
        offset_s=t - t[0],
        input_tokens=np.asarray(inputs, dtype=np.int64)[order],
        output_tokens=np.asarray(outputs, dtype=np.int64)[order],
        accounts=pick(accounts),
        models=pick(models),
    )


def _columns(header: list[str]) -> dict[str, int]:
    found = {}
    for field, names in _NAMES.items():
        for i, name in enumerate(header):
            if name in names:
                found[field] = i
                break
    return found


def _time(text: str) -> float | None:
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _tokens(text: str) -> int | None:
    text = text.strip()
    if not text.isdigit():
        return None
    return int(text)
