"""Real-time scheduling for a node's process: a SCHED_FIFO priority and a CPU set, for every thread it has.

The horizon bridges a starved control loop, but a robot computer that also runs inference, cameras and
a browser should not starve it in the first place. Applied to every thread of the process (DDS's
included); threads started later inherit it. Linux's own calls (os.sched_*): no package wraps them
better. What is not permitted is said with the fix, and the node runs on with normal scheduling.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

NOT_PERMITTED_HINT = ("needs CAP_SYS_NICE or an rtprio limit: e.g. '@realtime - rtprio 99' in "
                      "/etc/security/limits.conf for the robot user (log in again), `ulimit -r 99`, or "
                      "`--cap-add=SYS_NICE` for a container")


def parse_cpus(text: str) -> tuple[int, ...]:
    """'2,3' or '2-5' or '' (any CPU) as a tuple of CPU ids; ValueError names what is wrong."""
    cpus: list[int] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        first, _, last = part.partition("-")
        if not first.isdigit() or (last and not last.isdigit()):
            raise ValueError(f"cpu_affinity {text!r}: {part!r} is not a CPU id or a range like 2-3")
        cpus += range(int(first), int(last or first) + 1)
    available = os.sched_getaffinity(0)
    missing = sorted(set(cpus) - available)
    if missing:
        raise ValueError(f"cpu_affinity {text!r}: CPU {missing} not available to this process "
                         f"(available: {sorted(available)})")
    return tuple(sorted(set(cpus)))


def check_priority(priority: int) -> None:
    if not 0 <= priority <= os.sched_get_priority_max(os.SCHED_FIFO):
        raise ValueError(f"realtime_priority must be 0 (normal scheduling) or a SCHED_FIFO priority 1–"
                         f"{os.sched_get_priority_max(os.SCHED_FIFO)}, got {priority}")


def _threads() -> list[int]:
    return [int(t) for t in os.listdir("/proc/self/task")]


def apply(priority: int, cpus: Sequence[int]) -> tuple[bool, str]:
    """(done, what happened) after giving every thread of this process the priority (0: leave) and CPU set
    (empty: leave). Nothing is half applied silently: a refusal names the call and the fix."""
    done: list[str] = []
    if cpus:
        try:
            for tid in _threads():
                os.sched_setaffinity(tid, cpus)
            done.append(f"CPUs {list(cpus)}")
        except OSError as exc:
            return False, f"CPU affinity {list(cpus)} not applied ({exc.strerror}); running on any CPU"
    if priority:
        try:
            threads = _threads()
            for tid in threads:
                os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(priority))
            done.append(f"SCHED_FIFO priority {priority} on {len(threads)} threads")
        except PermissionError:
            return False, (f"SCHED_FIFO priority {priority} not permitted: {NOT_PERMITTED_HINT}; running with "
                           f"normal scheduling" + (f" ({', '.join(done)})" if done else ""))
        except OSError as exc:
            return False, f"SCHED_FIFO priority {priority} not applied ({exc.strerror}); normal scheduling"
    return True, ", ".join(done) or "normal scheduling"
