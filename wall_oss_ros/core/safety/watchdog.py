"""Watchdogs: no fresh chunk, stale measured state, measured state diverging from or not following the command."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from wall_oss_ros.core.safety.status import StatusCode


@dataclass(frozen=True)
class WatchdogConfig:
    chunk_timeout_s: float = 1.0  # halt when no chunk was accepted for this long while running
    max_observation_age_s: float = 0.5  # halt when the measured state is older than this
    tracking_grace_s: float = 0.2  # tracking error must persist this long before it faults
    # A controller that drops our messages leaves the robot still while the command moves: caught by comparing
    # progress over a window, long before the tracking error reaches its tolerance. 0 s: off.
    follow_window_s: float = 0.5  # span over which commanded and measured progress are compared [s]
    follow_min_motion: float = 0.1  # commanded net motion of an axis in the window that must show [axis unit]
    follow_min_ratio: float = 0.1  # measured / commanded progress below this: the controller does not follow

    def __post_init__(self) -> None:
        for name in ("chunk_timeout_s", "max_observation_age_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        if self.tracking_grace_s < 0 or self.follow_window_s < 0:
            raise ValueError("tracking_grace_s and follow_window_s must not be negative")
        if not self.follow_min_motion > 0 or not 0 <= self.follow_min_ratio < 1:
            raise ValueError("follow_min_motion must be positive and follow_min_ratio in [0, 1)")


class Watchdogs:
    def __init__(self, config: WatchdogConfig) -> None:
        self.config = config
        self.last_chunk_time: float | None = None  # executor clock time of the last accepted chunk
        self.armed_at: float | None = None  # when running began (chunk timeout counts from here first)
        self.tracking_since: dict[str, float] = {}
        self.progress: dict[str, deque[tuple[float, np.ndarray, np.ndarray]]] = {}

    def arm(self, now: float) -> None:
        self.armed_at = now
        self.tracking_since.clear()
        self.progress.clear()

    def chunk_accepted(self, now: float) -> None:
        self.last_chunk_time = now

    def check(self, now: float, observation_stamp: float, speed_scale: float = 1.0) -> StatusCode | None:
        """Halt condition of the watchdogs that recover by themselves (fresh data), or None. At a speed scale
        below 1 a chunk lasts 1/scale as long, and so does the wait for the next one."""
        if now - observation_stamp > self.config.max_observation_age_s:
            return StatusCode.HALT_STALE_OBSERVATION
        chunk, armed = self.last_chunk_time, self.armed_at
        reference = chunk if armed is None or (chunk is not None and chunk > armed) else armed
        if reference is not None and now - reference > self.config.chunk_timeout_s / speed_scale:
            return StatusCode.HALT_CHUNK_TIMEOUT
        return None

    def tracking(self, now: float, group: str, error: float, tolerance: float | None) -> bool:
        """True once |measured - commanded| of a group exceeded its tolerance for the grace period."""
        if tolerance is None or error <= tolerance:
            self.tracking_since.pop(group, None)
            return False
        since = self.tracking_since.setdefault(group, now)
        return now - since >= self.config.tracking_grace_s

    def following(self, now: float, group: str, commanded: np.ndarray, measured: np.ndarray) -> str:
        """'' while the measured state follows the command; else what moved and what did not."""
        window = self.config.follow_window_s
        if window <= 0:
            return ""
        history = self.progress.setdefault(group, deque())
        history.append((now, np.array(commanded, dtype=float), np.array(measured, dtype=float)))
        while len(history) > 1 and now - history[1][0] >= window:
            history.popleft()
        t0, c0, m0 = history[0]
        if now - t0 < window or not (np.all(np.isfinite(c0)) and np.all(np.isfinite(m0))):
            return ""
        # The group as a whole: an arm blocked at one joint (contact) still moves at the others; a controller
        # that drops the commands moves none of them.
        commanded_motion = np.abs(commanded - c0)
        axis = int(np.argmax(commanded_motion))
        if commanded_motion[axis] < self.config.follow_min_motion:
            return ""
        measured_motion = float(np.max(np.abs(measured - m0)))
        if measured_motion >= self.config.follow_min_ratio * commanded_motion[axis]:
            return ""
        return (f"axis {axis} was commanded {commanded_motion[axis]:.3f} in {now - t0:.2f} s; no joint of the "
                f"group moved more than {measured_motion:.3f}")
