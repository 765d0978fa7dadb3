"""Run a command while every core is kept busy by another process (a loaded robot computer or CI machine).

    python scripts/under_load.py [--loaders N] -- python -m pytest -q

One busy-loop process per core at normal priority; they are killed when the command ends, whatever way
it ends. Exit code: the command's.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys

BUSY_LOOP = "while True: pass"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loaders", type=int, default=os.cpu_count() or 2, help="busy processes (default: cores)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    loaders = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(args.loaders)]
    print(f"[under_load] {len(loaders)} busy processes; running: {' '.join(command)}", flush=True)
    try:
        return subprocess.call(command)
    finally:
        for p in loaders:
            p.send_signal(signal.SIGKILL)
            p.wait()


if __name__ == "__main__":
    raise SystemExit(main())
