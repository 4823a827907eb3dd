"""`gigawatt usage --account NAME`: an account's windows and buckets, from the gateway's state."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from gigawatt.exits import EXIT_FAILED, EXIT_USAGE

if TYPE_CHECKING:
    from gigawatt.cli import Subparsers


def add_usage(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "usage",
        help="show an account's usage windows and rate-limit buckets",
        description="Show an account's usage, read from the state store the policy names (the "
        "same one `serve` uses). The plan is the one on the account's keys unless --plan says.",
    )
    parser.add_argument("--account", required=True, help="the account")
    parser.add_argument("--plan", help="the plan to read limits from (default: the account's)")
    parser.add_argument("--config", type=Path, help="policy file (default: the embedded one)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(run=usage)


def usage(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from gigawatt.cli import report_policy_error
    from gigawatt.errors import PolicyError, StateError
    from gigawatt.gateway.serve import load
    from gigawatt.keys import open_key_store
    from gigawatt.limits import Limiter, open_store
    from gigawatt.limits.describe import limit_label

    try:
        policy = load(args.config)
    except PolicyError as exc:
        report_policy_error(exc)
        return EXIT_USAGE
    timeout_s = max(policy.gateway.state_timeout_s, 2.0)
    try:
        plan = args.plan
        if plan is None:
            keys = open_key_store(policy.gateway.state, timeout_s)
            try:
                plans = {r.plan for r in keys.list(args.account) if r.revoked_at is None}
            finally:
                keys.close()
            if len(plans) != 1:
                found = "no active keys" if not plans else f"keys on {sorted(plans)}"
                print(
                    f"gigawatt: account {args.account!r} has {found}; name one with --plan",
                    file=sys.stderr,
                )
                return EXIT_USAGE
            plan = plans.pop()
        if plan not in policy.plans:
            print(
                f"gigawatt: unknown plan {plan!r}; plans: {', '.join(policy.plans)}",
                file=sys.stderr,
            )
            return EXIT_USAGE
        limiter = Limiter(policy, open_store(policy.gateway.state, timeout_s))
        try:
            statuses = limiter.snapshot(args.account, plan, time.time())
        finally:
            limiter.close()
    except StateError as exc:
        print(f"gigawatt: cannot read the state store: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        rows = [s.as_json() for s in statuses]
        print(json.dumps({"account": args.account, "plan": plan, "limits": rows}, indent=2))
        return 0
    table = Table(title=f"{args.account} on {plan}")
    for column in ("limit", "used", "of", "left", "resets (UTC)"):
        table.add_column(column, justify="right" if column != "limit" else "left")
    for s in statuses:
        idle = s.reset_at is None or (s.scope == "bucket" and s.remaining >= s.limit)
        reset = "-" if idle else time.strftime("%a %d %b %H:%M", time.gmtime(s.reset_at))
        table.add_row(
            limit_label(s), f"{s.used:,.0f}", f"{s.limit:,.0f}", f"{s.remaining:,.0f}", reset
        )
    Console(file=sys.stdout).print(table)
    return 0
