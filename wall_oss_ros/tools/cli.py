"""`wall-oss-ros`: the suite's command line."""

from __future__ import annotations

import argparse
import contextlib
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

    if args.family == "wall-oss-0.5":
        from wall_oss_ros.tools.make_tiny_checkpoint_05 import LAYOUTS, write
    else:
        from wall_oss_ros.tools.make_tiny_checkpoint import LAYOUTS, write
    layout = args.layout or LAYOUTS[0]
    if layout not in LAYOUTS:
        raise SystemExit(f"--layout {layout!r}: {args.family} is written as one of {', '.join(LAYOUTS)}")
    print(write(Path(args.out), layout, args.contract, args.seed))
    return 0


def _bringup(args: argparse.Namespace) -> int:
    from pathlib import Path

    from wall_oss_ros.tools.bringup import BringupError, run

    try:
        return run(Path(args.graph))
    except BringupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from wall_oss_ros.tools.demo import run_demo

    return run_demo(Path(args.out), Path(args.checkpoint) if args.checkpoint else None, args.duration_s,
                    args.task, args.device, args.camera_hz, args.shadows, args.real_time_factor, args.model,
                    args.robot)


def _record(args: argparse.Namespace) -> int:
    from pathlib import Path

    from wall_oss_ros.tools.record import run_record

    extra = {}
    for item in args.topic:
        topic, _, type_name = item.partition(":")
        if not type_name:
            print(f"error: --topic {item}: expected /topic:pkg/msg/Type", file=sys.stderr)
            return 2
        extra[topic] = type_name
    return run_record(Path(args.out), args.contract, args.storage, args.duration_s, extra, args.use_sim_time)


def _eval_openloop(args: argparse.Namespace) -> int:
    from pathlib import Path

    from wall_oss_ros.tools.eval_openloop import run_eval

    try:
        metrics = run_eval(Path(args.bag), Path(args.checkpoint), args.contract, Path(args.out), args.every,
                           args.seed, args.device or None, args.instruction, args.max_observations,
                           time_source=args.time_source, max_clock_offset_s=args.max_clock_offset_s)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{metrics['chunks']} chunks, mean MAE {metrics['mae_mean']}; report: {Path(args.out) / 'report.md'}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    import os

    from wall_oss_ros.core.contract import resolve_contract
    from wall_oss_ros.policy.loader import load_backend
    from wall_oss_ros.policy.remote.server import PolicyServer

    api_key = os.environ.get(args.api_key_env) if args.api_key_env else None
    if args.api_key_env and not api_key:
        print(f"error: --api-key-env {args.api_key_env}: the variable is not set", file=sys.stderr)
        return 2
    backend, found = load_backend(args.checkpoint, resolve_contract(args.contract), device=args.device or None,
                                  denoising_steps=args.denoising_steps, seed=args.seed)
    backend.warmup()
    server = PolicyServer(backend, args.host, args.port, api_key)
    print(f"serving {args.checkpoint} ({found}) on ws://{args.host}:{args.port} (openpi protocol; GET /healthz)"
          f"{', API key required' if api_key else ''}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: stop serving
        server.serve_forever()
    return 0


def _dds_profile(args: argparse.Namespace) -> int:
    from wall_oss_ros.ros.dds import network_profile

    try:
        print(network_profile(args.address, args.peer), end="")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wall-oss-ros", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    doctor = sub.add_parser("doctor", help="check ROS, messages, DDS profile and torch on this machine")
    doctor.add_argument("--json", action="store_true", help="print the checks as JSON")
    doctor.set_defaults(func=_doctor)
    tiny = sub.add_parser("make-tiny-checkpoint", help="write a tiny random WALL-OSS checkpoint (offline)")
    tiny.add_argument("out", help="output directory")
    tiny.add_argument("--family", choices=["wall-oss-flow", "wall-oss-0.5"], default="wall-oss-flow")
    tiny.add_argument("--layout", default="", help="wall-oss-flow: transformers (default), lerobot, upstream, "
                      "wallx-1.1; wall-oss-0.5: x-square (default), lerobot")
    tiny.add_argument("--contract", default="aloha_bimanual", help="robot contract sizing the statistics")
    tiny.add_argument("--seed", type=int, default=0)
    tiny.set_defaults(func=_make_tiny_checkpoint)
    bringup = sub.add_parser("bringup", help="start a graph's nodes as separate processes from one YAML file")
    bringup.add_argument("graph", help="graph YAML (nodes: executable + parameters)")
    bringup.set_defaults(func=_bringup)
    demo = sub.add_parser("demo", help="closed loop on a simulated robot (ALOHA, TIAGo++), recorded, with a report")
    demo.add_argument("--robot", default="aloha", choices=["aloha", "tiago"],  # demo.CONTRACTS
                      help="aloha: gym-aloha's ViperX pair (joint space); tiago: TIAGo++ (26-D, arms through IK)")
    demo.add_argument("--out", default="outputs/demo", help="directory for the bag, plots and report")
    demo.add_argument("--checkpoint", default="", help="WALL-OSS checkpoint; empty: a generated tiny one")
    demo.add_argument("--model", default="wall-oss-flow", choices=["wall-oss-flow", "wall-oss-0.5"],  # demo.MODELS
                      help="family of the generated tiny checkpoint (a given checkpoint says its own)")
    demo.add_argument("--duration-s", type=float, default=20.0, help="sim time to run [s]")
    demo.add_argument("--task", default="AlohaInsertion-v0", choices=["AlohaInsertion-v0", "AlohaTransferCube-v0"])
    demo.add_argument("--device", default="", help="torch device for the policy; empty: cuda if present")
    demo.add_argument("--camera-hz", type=float, default=15.0, help="camera rate [Hz, sim time]")
    demo.add_argument("--shadows", action="store_true", help="render shadows (as gym-aloha; slower on a CPU)")
    demo.add_argument("--real-time-factor", type=float, default=0.5,
                      help="sim time per wall time; below 1 leaves the CPU room for every node on a small machine")
    demo.set_defaults(func=_demo)
    record = sub.add_parser("record", help="record a contract's topics, chunks and status into a rosbag2")
    record.add_argument("out", help="bag path to create")
    record.add_argument("--contract", default="aloha_bimanual", help="robot contract: name or YAML path")
    record.add_argument("--storage", choices=["mcap", "sqlite3"], default="mcap")
    record.add_argument("--duration-s", type=float, default=0.0, help="stop after this long [s]; 0: at Ctrl-C")
    record.add_argument("--topic", action="append", default=[], help="another topic, as /topic:pkg/msg/Type")
    record.add_argument("--use-sim-time", action="store_true", help="stamp messages with /clock time")
    record.set_defaults(func=_record)
    sub.add_parser("bag-to-lerobot", add_help=False,  # its own parser, in the data environment (main)
                   help="convert recorded bags into a LeRobot dataset to fine-tune on (--help: its options)")
    ev = sub.add_parser("eval-openloop", help="score the policy offline on a bag's or a LeRobot dataset's "
                        "observations")
    ev.add_argument("bag", help="rosbag2 directory, .mcap file, or LeRobot dataset directory")
    ev.add_argument("--checkpoint", required=True)
    ev.add_argument("--contract", default="aloha_bimanual")
    ev.add_argument("--out", default="outputs/eval")
    ev.add_argument("--every", type=int, default=1, help="evaluate every k-th synchronised observation")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--device", default="")
    ev.add_argument("--instruction", default="", help="task text when the bag has no /instruction")
    ev.add_argument("--max-observations", type=int, default=None)
    ev.add_argument("--time-source", choices=["header", "receive"], default="header",
                    help="one clock for every series: header stamps (checked against the receive times) or the "
                         "recorder's receive times")
    ev.add_argument("--max-clock-offset-s", type=float, default=0.1,
                    help="header stamps further than this from the receive times are refused [s]")
    ev.set_defaults(func=_eval_openloop)
    serve = sub.add_parser("serve", help="serve a checkpoint over openpi's websocket protocol (no ROS needed)")
    serve.add_argument("checkpoint", help="WALL-OSS checkpoint directory (either family)")
    serve.add_argument("--contract", default="aloha_bimanual", help="robot contract: name or YAML path")
    serve.add_argument("--host", default="127.0.0.1",
                       help="bind address; loopback unless set (e.g. 0.0.0.0 to serve other machines)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--api-key-env", default="", help="environment variable holding the API key clients must "
                       "send (Authorization: Api-Key <key>); empty: none")
    serve.add_argument("--device", default="", help="torch device; empty: cuda if present")
    serve.add_argument("--denoising-steps", type=int, default=10)
    serve.add_argument("--seed", type=int, default=0)
    serve.set_defaults(func=_serve)
    profile = sub.add_parser("dds-profile", help="print a Fast DDS profile for a graph split over hosts "
                             "(use it as FASTDDS_DEFAULT_PROFILES_FILE or dds_profile:= on every host)")
    profile.add_argument("--address", required=True, help="this host's IPv4 address on the robot network")
    profile.add_argument("--peer", action="append", default=[], help="another host's address (repeat for each)")
    profile.set_defaults(func=_dds_profile)
    return parser


DATA_COMMANDS = {"bag-to-lerobot": "wall_oss_ros.tools.bag_to_lerobot"}  # run where lerobot-dataset is


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in DATA_COMMANDS:
        from wall_oss_ros.tools.data_env import run_module

        try:
            return run_module(DATA_COMMANDS[argv[0]], argv[1:])
        except FileNotFoundError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
