"""The report: one HTML page with its plots embedded, and the numbers behind every plot.

    DIR/index.html           tables and plots, readable offline (PNGs inlined as base64)
    DIR/summary.json         every table and series of every scenario
    DIR/figures/NAME.png     each plot
    DIR/data/NAME.csv|json   the numbers each plot shows, one row per point, with its scenario

With two scenarios (`--compare`) every table has a column per scenario and every plot a panel
per scenario, on the same axes. Nothing in the report depends on when or where it was made,
so the same seed gives the same files.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

Summary = dict[str, Any]
Rows = list[dict[str, Any]]

# Fixed metadata so PNG bytes do not change from run to run.
_PNG_META = {"Software": None}
_DPI = 100


def write_report(directory: Path, summaries: Sequence[Summary], note: str = "") -> Path:
    """Write the report of one or two scenarios into `directory`; return index.html's path."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "figures").mkdir(exist_ok=True)
    (directory / "data").mkdir(exist_ok=True)
    figures = []
    for name, title, caption, make in FIGURES:
        fig, rows = make(summaries)
        png = _png(fig)
        (directory / "figures" / f"{name}.png").write_bytes(png)
        _write_rows(directory / "data" / name, rows)
        figures.append((name, title, caption, png))
    (directory / "summary.json").write_text(
        json.dumps(_clean({"scenarios": list(summaries)}), indent=1) + "\n"
    )
    page = _page(summaries, figures, note)
    path = directory / "index.html"
    path.write_text(page)
    return path


# -- figures ------------------------------------------------------------------------------------


def _panels(
    summaries: Sequence[Summary], title: str, ylabel: str, *, sharey: bool = True
) -> tuple[Figure, list[Any]]:
    n = len(summaries)
    fig, axes = plt.subplots(1, n, figsize=(7.2 * n, 3.8), sharey=sharey, squeeze=False)
    for ax, summary in zip(axes[0], summaries, strict=True):
        ax.set_title(summary["scenario"]["label"], fontsize=10)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    fig.suptitle(title, fontsize=11)
    return fig, list(axes[0])


def _hour_axis(ax: Any, summary: Summary) -> None:
    starts = summary["hourly"]["hour_start"]
    step = max(1, len(starts) // 8)
    ticks = list(range(0, len(starts), step))
    ax.set_xticks(ticks)
    ax.set_xticklabels(
        [starts[i][5:] if len(starts) > 24 else starts[i][11:] for i in ticks],
        fontsize=7,
        rotation=30,
    )
    ax.set_xlabel(f"local time ({summary['scenario']['timezone']})", fontsize=8)


def utilisation_figure(summaries: Sequence[Summary]) -> tuple[Figure, Rows]:
    fig, axes = _panels(summaries, "Fleet utilisation per hour", "share of full-batch tokens/s")
    rows: Rows = []
    for ax, summary in zip(axes, summaries, strict=True):
        label = summary["scenario"]["label"]
        fleet = summary["fleet"]
        starts = summary["hourly"]["hour_start"]
        if fleet is None:
            ax.text(0.5, 0.5, "no fleet: capacity unlimited", ha="center", transform=ax.transAxes)
            continue
        for pool in fleet["pools"]:
            line = ax.plot(pool["utilisation"], label=f"{pool['model']} tokens")[0]
            ax.plot(
                pool["slots_in_use"],
                linestyle=":",
                color=line.get_color(),
                label=f"{pool['model']} slots",
            )
            for h, start in enumerate(starts):
                rows.append(
                    {
                        "scenario": label,
                        "hour_start": start,
                        "model": pool["model"],
                        "utilisation": pool["utilisation"][h],
                        "slots_in_use": pool["slots_in_use"][h],
                        "queued": pool["queued"][h],
                    }
                )
        ax.axhline(1.0, color="grey", linewidth=0.8)
        _hour_axis(ax, summary)
        ax.legend(fontsize=7, ncol=2)
    return fig, rows


def refusals_figure(summaries: Sequence[Summary]) -> tuple[Figure, Rows]:
    fig, axes = _panels(summaries, "Refusals per plan per hour", "refused requests")
    rows: Rows = []
    for ax, summary in zip(axes, summaries, strict=True):
        label = summary["scenario"]["label"]
        hourly = summary["hourly"]
        plans = hourly["plans"]
        refused = hourly["refused"]
        for p, plan in enumerate(plans):
            series = [row[p] for row in refused]
            if any(series):
                ax.plot(series, label=plan)
        for limit, table in hourly["refused_by"].items():
            for h, start in enumerate(hourly["hour_start"]):
                for p, plan in enumerate(plans):
                    if table[h][p]:
                        rows.append(
                            {
                                "scenario": label,
                                "hour_start": start,
                                "plan": plan,
                                "limit": limit,
                                "refusals": table[h][p],
                            }
                        )
        _hour_axis(ax, summary)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, ncol=2)
        else:
            ax.text(0.5, 0.5, "no refusals", ha="center", transform=ax.transAxes)
    return fig, rows


def time_to_limit_figure(summaries: Sequence[Summary]) -> tuple[Figure, Rows]:
    fig, axes = _panels(
        summaries, "Hours from a 5-hour window's opening to its limit", "users hitting the limit"
    )
    rows: Rows = []
    for ax, summary in zip(axes, summaries, strict=True):
        label = summary["scenario"]["label"]
        hist = summary["time_to_limit"]
        starts = hist["bin_start_h"]
        bottom = [0] * len(starts)
        for plan, counts in hist["counts"].items():
            ax.bar(starts, counts, width=hist["bin_h"], bottom=bottom, align="edge", label=plan)
            bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
            for start, count in zip(starts, counts, strict=True):
                rows.append(
                    {
                        "scenario": label,
                        "plan": plan,
                        "hours_from": start,
                        "hours_to": start + hist["bin_h"],
                        "hits": count,
                    }
                )
        ax.set_xlabel("hours into the window", fontsize=8)
        if hist["counts"]:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "nobody reached a session limit", ha="center", transform=ax.transAxes)
    return fig, rows


def waits_figure(summaries: Sequence[Summary]) -> tuple[Figure, Rows]:
    fig, axes = _panels(summaries, "Queue wait and time to first token, all plans", "seconds")
    rows: Rows = []
    for ax, summary in zip(axes, summaries, strict=True):
        label = summary["scenario"]["label"]
        hourly = summary["hourly"]
        series = {
            "wait p50": hourly["all_wait_p50_s"],
            "wait p99": hourly["all_wait_p99_s"],
            "TTFT p50": hourly["all_ttft_p50_s"],
            "TTFT p99": hourly["all_ttft_p99_s"],
        }
        styles = {"wait p50": "C0:", "wait p99": "C0-", "TTFT p50": "C1:", "TTFT p99": "C1-"}
        for name, values in series.items():
            ax.plot([_nan(v) for v in values], styles[name], label=name)
        ax.set_yscale("symlog", linthresh=0.1)
        for h, start in enumerate(hourly["hour_start"]):
            rows.append(
                {
                    "scenario": label,
                    "hour_start": start,
                    "wait_p50_s": hourly["all_wait_p50_s"][h],
                    "wait_p99_s": hourly["all_wait_p99_s"][h],
                    "ttft_p50_s": hourly["all_ttft_p50_s"][h],
                    "ttft_p99_s": hourly["all_ttft_p99_s"][h],
                }
            )
        _hour_axis(ax, summary)
        ax.legend(fontsize=7, ncol=2)
    return fig, rows


def affected_figure(summaries: Sequence[Summary]) -> tuple[Figure, Rows]:
    fig, axes = _panels(
        summaries,
        "Active users who met a refusal or a degraded answer, per day",
        "share of the plan's active users",
    )
    rows: Rows = []
    for ax, summary in zip(axes, summaries, strict=True):
        label = summary["scenario"]["label"]
        names = list(summary["plans"])
        refused = [summary["plans"][p].get("users_refused_share") or 0.0 for p in names]
        degraded = [summary["plans"][p].get("users_degraded_share") or 0.0 for p in names]
        either = [summary["plans"][p].get("users_affected_share") or 0.0 for p in names]
        x = range(len(names))
        ax.bar([i - 0.27 for i in x], refused, width=0.27, label="refused")
        ax.bar(list(x), degraded, width=0.27, label="degraded")
        ax.bar([i + 0.27 for i in x], either, width=0.27, label="either")
        ax.set_xticks(list(x))
        ax.set_xticklabels(names, fontsize=7, rotation=30)
        ax.legend(fontsize=7)
        for name, r, d, e in zip(names, refused, degraded, either, strict=True):
            rows.append(
                {
                    "scenario": label,
                    "plan": name,
                    "refused_share": r,
                    "degraded_share": d,
                    "affected_share": e,
                }
            )
    return fig, rows


FIGURES: tuple[tuple[str, str, str, Callable[[Sequence[Summary]], tuple[Figure, Rows]]], ...] = (
    (
        "utilisation",
        "Fleet utilisation",
        "Output tokens served each hour over what each model's replicas serve at full batch on "
        "its mean request (solid), and batch slots in use (dotted). Above 1 is not possible for "
        "long; near it, requests queue.",
        utilisation_figure,
    ),
    (
        "refusals",
        "Refusals per plan",
        "Requests refused each hour, by plan (the CSV splits them by the limit that refused "
        "them; `overloaded` means the request waited its plan's whole queue timeout).",
        refusals_figure,
    ),
    (
        "time_to_limit",
        "Time to the 5-hour limit",
        "For every 5-hour window a user ran out of: how long after it opened.",
        time_to_limit_figure,
    ),
    (
        "waits",
        "Waits",
        "Queue wait (before a replica takes the request) and time to first token, median and "
        "99th percentile of each hour's served requests.",
        waits_figure,
    ),
    (
        "affected",
        "What users feel",
        "Of the users who sent anything on a day, the share who saw a refusal, a degraded "
        "answer, or either, averaged over days.",
        affected_figure,
    ),
)


# -- the page -----------------------------------------------------------------------------------

_PLAN_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("users", "users", "int"),
    ("requests", "requests", "int"),
    ("refused", "refused", "int"),
    ("refused_by", "refused by", "limits"),
    ("wait_p50_s", "wait p50", "s"),
    ("wait_p99_s", "wait p99", "s"),
    ("ttft_p50_s", "TTFT p50", "s"),
    ("ttft_p99_s", "TTFT p99", "s"),
    ("degraded_share", "degraded", "%"),
    ("users_hit_session_limit", "hit 5h limit", "int"),
    ("hours_to_limit_p50", "h to limit p50", "h"),
    ("users_affected_share", "users affected/day", "%"),
)


def _page(
    summaries: Sequence[Summary], figures: list[tuple[str, str, str, bytes]], note: str
) -> str:
    labels = [s["scenario"]["label"] for s in summaries]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>gigawatt simulation: {html.escape(' vs '.join(labels))}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1500px}"
        "table{border-collapse:collapse;font-size:13px;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}"
        "th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}"
        "img{max-width:100%}.cap{color:#555;font-size:13px;max-width:900px}"
        ".b{background:#f7fbff}</style></head><body>",
        f"<h1>Simulation: {html.escape(' vs '.join(labels))}</h1>",
    ]
    if note:
        parts.append(f"<p>{html.escape(note)}</p>")
    parts.append(_scenario_table(summaries))
    parts.append("<h2>Per plan</h2>")
    parts.append(_plan_table(summaries))
    parts.append(
        "<p class='cap'>users: simulated accounts. requests: sent, retries included. wait: "
        "before a replica took the request; TTFT: to the first token (served requests). "
        "degraded: served answers the plan's degrade rule changed. hit 5h limit: users refused "
        "by a session window; h to limit: hours from that window's opening. users affected: "
        "share of the day's active users who met a refusal or a degraded answer.</p>"
    )
    fleet_table = _fleet_table(summaries)
    if fleet_table:
        parts.append("<h2>Fleet</h2>")
        parts.append(fleet_table)
    for name, title, caption, png in figures:
        data = base64.b64encode(png).decode("ascii")
        parts.append(f"<h2 id='{name}'>{html.escape(title)}</h2>")
        parts.append(f"<img alt='{html.escape(title)}' src='data:image/png;base64,{data}'>")
        parts.append(
            f"<p class='cap'>{html.escape(caption)} Data: <a href='data/{name}.csv'>CSV</a>, "
            f"<a href='data/{name}.json'>JSON</a>.</p>"
        )
    parts.append("<p class='cap'>Everything above: <a href='summary.json'>summary.json</a>.</p>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _scenario_table(summaries: Sequence[Summary]) -> str:
    rows: list[tuple[str, Callable[[Summary], str]]] = [
        ("policy", lambda s: s["scenario"]["policy"]),
        ("fleet", lambda s: f"{s['scenario']['fleet']} ({s['scenario']['fleet_gpus']:,} GPUs)"),
        (
            "simulated",
            lambda s: (
                f"{s['scenario']['days']} day(s) from {s['scenario']['start']} "
                f"{s['scenario']['timezone']}"
            ),
        ),
        (
            "sample",
            lambda s: (
                f"{s['scenario']['users']:,} users, "
                f"{s['scenario']['sample_fraction']:.3g} of each plan, "
                "against the fleet scaled alike"
            ),
        ),
        (
            "requests sent",
            lambda s: f"{s['totals']['requests_sent']:,} ({s['totals']['retries']:,} retries)",
        ),
        ("served", lambda s: f"{s['totals']['served']:,}"),
        ("refused", lambda s: f"{s['totals']['refused']:,}"),
        (
            "gave up / held back",
            lambda s: f"{s['totals']['gave_up']:,} / {s['totals']['held_back']:,}",
        ),
        (
            "wait p50 / p99",
            lambda s: (
                f"{_fmt(s['totals']['wait_p50_s'], 's')} / {_fmt(s['totals']['wait_p99_s'], 's')}"
            ),
        ),
        (
            "TTFT p50 / p99",
            lambda s: (
                f"{_fmt(s['totals']['ttft_p50_s'], 's')} / {_fmt(s['totals']['ttft_p99_s'], 's')}"
            ),
        ),
        ("degraded answers", lambda s: _fmt(s["totals"]["degraded_share"], "%")),
        ("active users affected / day", lambda s: _fmt(s["totals"]["affected_share"], "%")),
    ]
    head = (
        "<tr><th></th>"
        + "".join(f"<th>{html.escape(s['scenario']['label'])}</th>" for s in summaries)
        + "</tr>"
    )
    body = "".join(
        f"<tr><td>{name}</td>"
        + "".join(f"<td>{html.escape(get(s))}</td>" for s in summaries)
        + "</tr>"
        for name, get in rows
    )
    return f"<table>{head}{body}</table>"


def _plan_table(summaries: Sequence[Summary]) -> str:
    n = len(summaries)
    plans: list[str] = []
    for s in summaries:
        plans.extend(p for p in s["plans"] if p not in plans)
    head = (
        "<tr><th rowspan='2'>plan</th>"
        + "".join(f"<th colspan='{n}'>{title}</th>" for _, title, _ in _PLAN_COLUMNS)
        + "</tr>"
    )
    if n > 1:
        head += (
            "<tr>"
            + "".join("".join(f"<th>{chr(65 + i)}</th>" for i in range(n)) for _ in _PLAN_COLUMNS)
            + "</tr>"
        )
    body = []
    for plan in plans:
        cells = []
        for key, _, kind in _PLAN_COLUMNS:
            for i, s in enumerate(summaries):
                value = s["plans"].get(plan, {}).get(key)
                css = " class='b'" if i % 2 else ""
                cells.append(f"<td{css}>{html.escape(_fmt(value, kind))}</td>")
        body.append(f"<tr><td>{html.escape(plan)}</td>{''.join(cells)}</tr>")
    legend = ""
    if n > 1:
        legend = (
            "<p>"
            + "; ".join(
                f"{chr(65 + i)}: {html.escape(s['scenario']['label'])}"
                for i, s in enumerate(summaries)
            )
            + "</p>"
        )
    return legend + f"<table>{head}{''.join(body)}</table>"


def _fleet_table(summaries: Sequence[Summary]) -> str:
    rows = []
    for s in summaries:
        if s["fleet"] is None:
            continue
        for pool in s["fleet"]["pools"]:
            rows.append(
                f"<tr><td>{html.escape(s['scenario']['label'])}</td>"
                f"<td>{html.escape(pool['model'])}</td><td>{pool['replicas']:,}</td>"
                f"<td>{pool['batch_slots']:,}</td>"
                f"<td>{pool['capacity_tokens_per_s']:,.0f}</td>"
                f"<td>{_fmt(pool['peak_utilisation'], '%')}</td></tr>"
            )
    if not rows:
        return ""
    head = (
        "<tr><th>scenario</th><th>model</th><th>replicas (sampled)</th><th>batch slots</th>"
        "<th>full-batch output tokens/s</th><th>peak hour utilisation</th></tr>"
    )
    return f"<table>{head}{''.join(rows)}</table>"


def _fmt(value: Any, kind: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if kind == "int":
        return f"{value:,}"
    if kind == "%":
        return f"{100 * value:.2f}%"
    if kind == "s":
        return f"{value:.3g} s" if value < 100 else f"{value:,.0f} s"
    if kind == "h":
        return f"{value:.2f} h"
    if kind == "limits":
        return ", ".join(f"{k} {v:,}" for k, v in value.items()) or "-"
    return str(value)


def _nan(value: Any) -> float:
    return math.nan if value is None else float(value)


# -- files ---------------------------------------------------------------------------------------


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=_DPI, metadata=_PNG_META)
    plt.close(fig)
    return buffer.getvalue()


def _write_rows(stem: Path, rows: Rows) -> None:
    clean = _clean(rows)
    stem.with_suffix(".json").write_text(json.dumps(clean, indent=1) + "\n")
    fields: list[str] = []
    for row in rows:
        fields.extend(k for k in row if k not in fields)
    with stem.with_suffix(".csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields or ["scenario"])
        writer.writeheader()
        writer.writerows(clean)


def _clean(value: Any) -> Any:
    """JSON has no NaN: missing numbers become null."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value
