"""Starve a process as a loaded machine would: SIGSTOP it for 30–80 ms at random moments, SIGCONT after.

    python test/support/staller.py PID --seconds 10 [--seed 0]

Runs under SCHED_FIFO where permitted, so that the stalls last what they are meant to even while every core
is busy (a stall stretched past the executor's 100 ms horizon tests something else). Prints the stall
lengths it achieved as one JSON line at the end; the process is always left running (SIGCONT on exit).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import time


def main() -> int:
    told_to_stop = []  # SIGINT sets it, whenever it comes (even before the loop): the report is always printed
    signal.signal(signal.SIGINT, lambda *_: told_to_stop.append(True))
    parser = argparse.ArgumentParser()
    parser.add_argument("pid", type=int)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(20))
        realtime = True
    except PermissionError:
        realtime = False
    rng, stalls = random.Random(args.seed), []
    end = time.monotonic() + args.seconds
    try:
        time.sleep(0.5)
        while time.monotonic() < end and not told_to_stop:
            start = time.monotonic()
            os.kill(args.pid, signal.SIGSTOP)
            time.sleep(rng.uniform(0.03, 0.08))
            os.kill(args.pid, signal.SIGCONT)
            stalls.append(time.monotonic() - start)
            time.sleep(rng.uniform(0.2, 0.5))
    except ProcessLookupError:  # the process ended
        pass
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(args.pid, signal.SIGCONT)
    print(json.dumps({"realtime": realtime, "stalls": len(stalls), "max_stall_s": max(stalls, default=0.0)}),
          flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
