"""`wall-oss-ros`: the suite's command line."""

from __future__ import annotations

import argparse
import json
import sys


def _doctor(args: argparse.Namespace) -> int:
    from wall_oss_ros.tools.doctor import as_dicts, run_checks

    checks = run_checks()
    if args.json:
        print(json.dumps(as_dicts(checks), indent=2))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title="wall_oss_ros doctor")
        for column in ("check", "status", "detail"):
            table.add_column(column)
        for c in checks:
            status = "[green]ok" if c.ok else ("[red]FAIL" if c.required else "[yellow]missing")
            table.add_row(c.name, status, c.detail)
        Console().print(table)
    return 0 if all(c.ok for c in checks if c.required) else 1


def _make_tiny_checkpoint(args: argparse.Namespace) -> int:
    from pathlib import Path

    from wall_oss_ros.tools.make_tiny_checkpoint import write

    print(write(Path(args.out), args.layout, args.contract, args.seed))
    return 0


def _bringup(args: argparse.Namespace) -> int:
    from pathlib import Path

    from wall_oss_ros.tools.bringup import BringupError, run

    try:
        return run(Path(args.graph))
    except BringupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wall-oss-ros", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    doctor = sub.add_parser("doctor", help="check ROS, messages, DDS profile and torch on this machine")
    doctor.add_argument("--json", action="store_true", help="print the checks as JSON")
    doctor.set_defaults(func=_doctor)
    tiny = sub.add_parser("make-tiny-checkpoint", help="write a tiny random WALL-OSS checkpoint (offline)")
    tiny.add_argument("out", help="output directory")
    tiny.add_argument("--layout", choices=["transformers", "lerobot", "upstream"], default="transformers")
    tiny.add_argument("--contract", default="aloha_bimanual", help="robot contract sizing the statistics")
    tiny.add_argument("--seed", type=int, default=0)
    tiny.set_defaults(func=_make_tiny_checkpoint)
    bringup = sub.add_parser("bringup", help="start a graph's nodes as separate processes from one YAML file")
    bringup.add_argument("graph", help="graph YAML (nodes: executable + parameters)")
    bringup.set_defaults(func=_bringup)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
