"""Watchdogs: no fresh chunk, stale measured state, measured state diverging from the command."""

from __future__ import annotations

from dataclasses import dataclass

from wall_oss_ros.core.safety.status import StatusCode


@dataclass(frozen=True)
class WatchdogConfig:
    chunk_timeout_s: float = 1.0  # halt when no chunk was accepted for this long while running
    max_observation_age_s: float = 0.5  # halt when the measured state is older than this
    tracking_grace_s: float = 0.2  # tracking error must persist this long before it faults

    def __post_init__(self) -> None:
        for name in ("chunk_timeout_s", "max_observation_age_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        if self.tracking_grace_s < 0:
            raise ValueError("tracking_grace_s must not be negative")


class Watchdogs:
    def __init__(self, config: WatchdogConfig) -> None:
        self.config = config
        self.last_chunk_time: float | None = None  # executor clock time of the last accepted chunk
        self.armed_at: float | None = None  # when running began (chunk timeout counts from here first)
        self.tracking_since: dict[str, float] = {}

    def arm(self, now: float) -> None:
        self.armed_at = now
        self.tracking_since.clear()

    def chunk_accepted(self, now: float) -> None:
        self.last_chunk_time = now

    def check(self, now: float, observation_stamp: float) -> StatusCode | None:
        """Halt condition of the watchdogs that recover by themselves (fresh data), or None."""
        if now - observation_stamp > self.config.max_observation_age_s:
            return StatusCode.HALT_STALE_OBSERVATION
        chunk, armed = self.last_chunk_time, self.armed_at
        reference = chunk if armed is None or (chunk is not None and chunk > armed) else armed
        if reference is not None and now - reference > self.config.chunk_timeout_s:
            return StatusCode.HALT_CHUNK_TIMEOUT
        return None

    def tracking(self, now: float, group: str, error: float, tolerance: float | None) -> bool:
        """True once |measured - commanded| of a group exceeded its tolerance for the grace period."""
        if tolerance is None or error <= tolerance:
            self.tracking_since.pop(group, None)
            return False
        since = self.tracking_since.setdefault(group, now)
        return now - since >= self.config.tracking_grace_s
