"""`gigawatt keys`: create, list, revoke and re-plan the gateway's API keys.

Every action opens the key store at the policy's `gateway.state`, so `serve` and `keys` given
the same policy (and working directory, for a relative SQLite path) see the same keys. A secret
is printed once, on stdout, by `create`, and nowhere else: not on stderr, not by `list`.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from gigawatt.errors import PolicyError, StateError
from gigawatt.exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from gigawatt.keys import KeyStore, open_key_store

if TYPE_CHECKING:
    from gigawatt.cli import Subparsers
    from gigawatt.policy.model import Policy


# An operator's command may wait longer for a busy store than a request in the gateway should.
MIN_TIMEOUT_S = 2.0

Action = Callable[[argparse.Namespace, "Policy", KeyStore], int]


def add_keys(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "keys",
        help="create, list and revoke the gateway's API keys",
        description="Manage the gateway's API keys, kept as SHA-256 digests in the state store "
        "the policy's gateway.state names. A secret is shown once, when it is created.",
    )
    parser.set_defaults(run=lambda _args: _print_help(parser))
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="policy file whose gateway.state holds the keys (default: the embedded policy)",
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION")

    create = actions.add_parser(
        "create",
        parents=[common],
        help="create a key and print its secret, once",
        description="Create a key for an account on a plan of the policy. The secret is printed "
        "once, on stdout; only its SHA-256 digest is stored.",
    )
    create.add_argument("--account", required=True, metavar="NAME", help="the key's account")
    create.add_argument("--plan", required=True, help="a plan of the policy")
    create.add_argument("--label", default="", metavar="TEXT", help="a note shown by `list`")
    create.add_argument(
        "--quiet", "-q", action="store_true", help="print only the secret, for $(...) capture"
    )
    create.set_defaults(run=_runner(keys_create, plan_arg=True))

    listing = actions.add_parser(
        "list",
        parents=[common],
        help="list keys (never their secrets)",
        description="List keys, revoked ones too, oldest first. Secrets and digests are never "
        "shown.",
    )
    listing.add_argument("--account", metavar="NAME", help="only this account's keys")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(run=_runner(keys_list))

    revoke = actions.add_parser(
        "revoke",
        parents=[common],
        help="revoke a key for good",
        description="Revoke a key: it stops authenticating at once and stays listed.",
    )
    revoke.add_argument("key_id", metavar="KEY_ID", help="the key's id, as `list` shows it")
    revoke.set_defaults(run=_runner(keys_revoke))

    set_plan = actions.add_parser(
        "set-plan",
        parents=[common],
        help="move every key of an account to a plan",
        description="Move every key of an account, revoked ones too, to a plan of the policy.",
    )
    set_plan.add_argument("--account", required=True, metavar="NAME", help="the account")
    set_plan.add_argument("--plan", required=True, help="a plan of the policy")
    set_plan.set_defaults(run=_runner(keys_set_plan, plan_arg=True))


def keys_create(args: argparse.Namespace, policy: Policy, store: KeyStore) -> int:
    other_plans = {r.plan for r in store.list(args.account) if r.active} - {args.plan}
    record, secret = store.create(args.account, args.plan, time.time(), args.label)
    if args.quiet:
        print(secret)
    else:
        print(f"Created key {record.key_id} for account {args.account!r} on plan {args.plan!r}.")
        print("Its secret is shown only this once: store it now. It cannot be recovered, only")
        print("revoked and replaced.")
        print()
        print(f"    {secret}")
        print()
    if other_plans:
        print(
            f"gigawatt: note: account {args.account!r} has other active keys on "
            f"{', '.join(sorted(other_plans))}; `gigawatt keys set-plan --account "
            f"{shlex.quote(args.account)} --plan PLAN` puts them all on one plan",
            file=sys.stderr,
        )
    return EXIT_OK


def keys_list(args: argparse.Namespace, policy: Policy, store: KeyStore) -> int:
    records = store.list(args.account)
    if args.json:
        print(json.dumps([r.as_json() for r in records], indent=2))
        return EXIT_OK
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(file=sys.stdout)
    if not records:
        empty = "No keys." if args.account is None else f"No keys for {args.account!r}."
        console.print(empty, markup=False, highlight=False)
        return EXIT_OK
    table = Table(title=Text(f"API keys in {_safe_url(policy.gateway.state)}"))
    table.add_column("key id", no_wrap=True)
    table.add_column("account")
    table.add_column("plan")
    table.add_column("label")
    table.add_column("created (UTC)")
    table.add_column("revoked (UTC)")
    for r in records:
        revoked = _when(r.revoked_at) if r.revoked_at is not None else "-"
        # Text, not str: rich would read "[...]" in a name or label as markup.
        cells = (r.key_id, r.account, r.plan, r.label, _when(r.created_at), revoked)
        table.add_row(*(Text(cell) for cell in cells))
    console.print(table)
    return EXIT_OK


def keys_revoke(args: argparse.Namespace, policy: Policy, store: KeyStore) -> int:
    try:
        revoked = store.revoke(args.key_id, time.time())
    except ValueError as exc:
        print(f"gigawatt: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"Revoked {args.key_id}." if revoked else f"{args.key_id} was already revoked.")
    return EXIT_OK


def keys_set_plan(args: argparse.Namespace, policy: Policy, store: KeyStore) -> int:
    moved = store.set_plan(args.account, args.plan)
    if moved == 0:
        print(f"gigawatt: account {args.account!r} has no keys", file=sys.stderr)
        return EXIT_FAILED
    noun = "key" if moved == 1 else "keys"
    print(f"Moved {moved} {noun} of account {args.account!r} to plan {args.plan!r}.")
    return EXIT_OK


def _runner(action: Action, plan_arg: bool = False) -> Callable[[argparse.Namespace], int]:
    """A handler that loads the policy, opens its key store, runs `action` and closes it."""

    def run(args: argparse.Namespace) -> int:
        # Imported here: gigawatt.cli imports this module to register the command.
        from gigawatt.cli import report_policy_error
        from gigawatt.policy.load import load_default_policy, load_policy

        try:
            policy = load_policy(args.config) if args.config else load_default_policy()
        except PolicyError as exc:
            report_policy_error(exc)
            return EXIT_USAGE
        if plan_arg and args.plan not in policy.plans:
            print(
                f"gigawatt: unknown plan {args.plan!r}; the plans of {policy.source} are: "
                f"{', '.join(policy.plans)}",
                file=sys.stderr,
            )
            return EXIT_USAGE
        url = policy.gateway.state
        if url.startswith("memory:"):
            print(
                "gigawatt: note: gateway.state is memory://, so keys last only as long as this "
                "command; use sqlite:/// or redis:// state to keep them",
                file=sys.stderr,
            )
        try:
            store = open_key_store(url, max(policy.gateway.state_timeout_s, MIN_TIMEOUT_S))
        except ValueError as exc:
            print(f"gigawatt: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except StateError as exc:
            print(f"gigawatt: cannot open the key store: {exc}", file=sys.stderr)
            return EXIT_FAILED
        try:
            return action(args, policy, store)
        except ValueError as exc:
            print(f"gigawatt: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except StateError as exc:
            print(f"gigawatt: the key store failed: {exc}", file=sys.stderr)
            return EXIT_FAILED
        finally:
            store.close()

    return run


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _when(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M")


def _safe_url(url: str) -> str:
    # A Redis URL may carry a password (redis://:secret@host); the table title must not.
    scheme, sep, rest = url.partition("://")
    if scheme.startswith("redis") and "@" in rest:
        rest = rest.split("@", 1)[1]
    return f"{scheme}{sep}{rest}"
