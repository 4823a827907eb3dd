"""`gigawatt plan`: the capacity planner's commands, each an `add_*` function in PLAN_COMMANDS.

To add a plan command, write its `add_*` function (building its parser and setting `run`) in its
own module and append it to PLAN_COMMANDS.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from gigawatt.capacity.limits_cli import add_limits
from gigawatt.capacity.site_cli import add_compare, add_site
from gigawatt.capacity.throughput_cli import add_fit, add_throughput
from gigawatt.exits import EXIT_USAGE

if TYPE_CHECKING:
    from gigawatt.cli import Subparsers


# Every plan command, in the order `gigawatt plan --help` lists them.
PLAN_COMMANDS: tuple[Callable[[Subparsers], None], ...] = (
    add_throughput,
    add_fit,
    add_limits,
    add_site,
    add_compare,
)


def add_plan(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="capacity planning: GPUs to tokens/s, sites to GPUs, fleets to limits",
        description="Plan capacity with arithmetic a reader can check: what a replica of a model "
        "serves on given GPUs, what a site holds, and what limits a fleet sustains. The model and "
        "its calibration are in docs/capacity.md.",
    )
    parser.set_defaults(run=lambda _args: _print_help(parser))
    commands = parser.add_subparsers(title="plan commands", metavar="COMMAND")
    for add in PLAN_COMMANDS:
        add(commands)


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE
