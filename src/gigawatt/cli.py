"""The `gigawatt` command line.

Each subcommand is one `add_*` function that builds its parser and sets `run` to a handler taking
the parsed arguments and returning the exit status. To add a command, write both and list the
`add_*` function in `COMMANDS`. Exit statuses are in `gigawatt.exits`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeAlias

from rich.console import Console

from gigawatt import __version__
from gigawatt.capacity.cli import add_plan
from gigawatt.errors import PolicyError
from gigawatt.exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from gigawatt.gateway.cli import add_serve
from gigawatt.gateway.usage_cli import add_usage
from gigawatt.keys.cli import add_keys
from gigawatt.sim.cli import add_simulate
from gigawatt.simbackend.cli import add_sim_backend

# argparse has no public name for the object `add_subparsers` returns.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
Handler = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with `argv` (default: the process's arguments); return the status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Handler | None = getattr(args, "run", None)
    if run is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gigawatt",
        description="Plan, simulate and enforce LLM usage policies from one policy file.",
    )
    parser.add_argument("--version", action="version", version=f"gigawatt {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for add in COMMANDS:
        add(subparsers)
    return parser


# -- check-config ---------------------------------------------------------------------------


def add_check_config(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "check-config",
        help="check a policy file and print a summary of it",
        description="Check a policy file. Prints a summary and exits 0, or prints every "
        "problem found as FILE: KEY.PATH: REASON and exits 2.",
    )
    parser.add_argument("file", type=Path, help="the policy file (TOML)")
    parser.set_defaults(run=check_config)


def check_config(args: argparse.Namespace) -> int:
    # Imported here so commands that never read a policy do not pay for it at start-up.
    from gigawatt.policy.load import load_policy
    from gigawatt.policy.summary import print_policy

    try:
        policy = load_policy(args.file)
    except PolicyError as exc:
        report_policy_error(exc)
        return EXIT_USAGE
    print_policy(policy, Console(file=sys.stdout))
    return EXIT_OK


def report_policy_error(exc: PolicyError) -> None:
    """Every problem on its own line as `FILE: KEY.PATH: REASON`, the way compilers report."""
    for problem in exc.problems:
        print(f"{exc.source}: {problem}", file=sys.stderr)
    count = len(exc.problems)
    print(f"{exc.source}: {count} problem{'s' if count != 1 else ''}", file=sys.stderr)


# -- limiter-demo ---------------------------------------------------------------------------


def add_limiter_demo(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "limiter-demo",
        help="watch the limiter admit and refuse one account's requests on a virtual clock",
        description="Send a steady stream of requests from one account through the real "
        "limiter, on a virtual clock, and show when and why its limits refuse them.",
    )
    parser.add_argument("--policy", type=Path, help="policy file (default: the embedded one)")
    parser.add_argument("--plan", default="pro", help="plan to use (default: pro)")
    parser.add_argument("--model", help="model to use (default: the plan's last)")
    parser.add_argument("--state", default="memory://", help="state URL (default: memory://)")
    parser.add_argument("--requests", type=int, default=74, help="requests to send (default: 74)")
    parser.set_defaults(run=limiter_demo)


def limiter_demo(args: argparse.Namespace) -> int:
    from gigawatt.demo import run_demo
    from gigawatt.errors import StateError
    from gigawatt.policy.load import load_default_policy, load_policy

    try:
        policy = load_policy(args.policy) if args.policy else load_default_policy()
    except PolicyError as exc:
        report_policy_error(exc)
        return EXIT_USAGE
    if args.plan not in policy.plans:
        print(
            f"gigawatt: unknown plan {args.plan!r}; plans: {', '.join(policy.plans)}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.model is not None and args.model not in policy.plans[args.plan].models:
        print(f"gigawatt: plan {args.plan!r} has no model {args.model!r}", file=sys.stderr)
        return EXIT_USAGE
    if args.requests < 1:
        print("gigawatt: --requests must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    try:
        run_demo(
            policy,
            Console(file=sys.stdout),
            plan=args.plan,
            model=args.model,
            state=args.state,
            requests=args.requests,
        )
    except (StateError, ValueError) as exc:
        print(f"gigawatt: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


# Every subcommand, in the order `gigawatt --help` lists them.
COMMANDS: tuple[Callable[[Subparsers], None], ...] = (
    add_check_config,
    add_limiter_demo,
    add_serve,
    add_keys,
    add_usage,
    add_sim_backend,
    add_plan,
    add_simulate,
)
