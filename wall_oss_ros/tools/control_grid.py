"""A bag's observations resampled onto the contract's control grid: the frames of a LeRobot dataset.

LeRobot datasets are sampled at a fixed fps (timestamp = frame_index / fps; video frames are looked up by it),
while a bag's observations come at the cameras' rate with jitter. Frame k of an episode, at t0 + k·dt, holds
the newest observation the policy node had formed by then and, as `action`, the recorded target at that time
(linear between recorded rows, per dimension). An episode ends where the recording cannot give a frame: the
newest observation older than the allowed age (a camera gap), no task (an empty instruction), a new
instruction when episodes are split by instruction, or the end of the bag.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from wall_oss_ros.core.observation import Snapshot
from wall_oss_ros.tools.bag_observations import RecordingStream
from wall_oss_ros.tools.openloop_metrics import ground_truth

SPLITS = ("bag", "instruction")
STAMP_SLACK = 1e-3  # share of a step by which an observation may lie after its grid time (float stamps)
TRUTH_WAIT_S = 5.0  # observations waiting this long for a recorded target mean a dimension has none


@dataclass(frozen=True)
class GridFrame:
    episode: int  # counts the episodes of this bag, from 0
    t: float  # [s] grid time on the stream's time source
    snapshot: Snapshot  # the newest observation at t (its t_obs ≤ t)
    task: str
    action: np.ndarray  # (D,) recorded target at t, contract action order


@dataclass
class GridCounts:
    frames: int = 0
    episodes: int = 0
    gaps: int = 0  # episodes ended by a camera gap
    untasked_observations: int = 0  # observations under an empty instruction: not written
    before_targets: int = 0  # grid times before, or after, the recorded targets: not written
    after_targets: int = 0


class ControlGrid:
    """Frames of one bag's stream; `counts` says what was made and why episodes ended."""

    def __init__(self, stream: RecordingStream, fps: int, split: str = "bag", task: str = "",
                 max_observation_age_s: float = 0.25) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.stream, self.dt, self.split, self.task = stream, 1.0 / fps, split, task
        self.max_observation_age_s = max_observation_age_s
        self.counts = GridCounts()
        self._times: deque[float] = deque()  # recorded targets kept for interpolation
        self._rows: deque[np.ndarray] = deque()
        self._known_until = np.full(len(stream.contract.action_names), -np.inf)  # per dimension [s]
        self._known_from = np.full(len(stream.contract.action_names), np.inf)

    def _take_truth(self) -> None:
        """Move the rows the stream recorded since the last call into the interpolation window."""
        s = self.stream
        for t, row in zip(s.truth_times, s.truth_values, strict=True):
            self._times.append(t)
            self._rows.append(row)
            known = np.isfinite(row)
            self._known_until[known] = np.maximum(self._known_until[known], t)
            self._known_from[known] = np.minimum(self._known_from[known], t)
        s.truth_times.clear()
        s.truth_values.clear()

    def _action(self, t: float) -> np.ndarray:
        while len(self._times) > 2 and self._times[1] < t - 1.0:  # keep a second before t for every dimension
            self._times.popleft()
            self._rows.popleft()
        order = np.argsort(np.array(self._times), kind="stable")
        return ground_truth(np.array(self._times)[order], np.array(self._rows)[order], np.array([t]))[0]

    def _task_of(self, index: int) -> str:
        """The task of the index-th observation: --task, else the latest instruction received before it."""
        if self.task:
            return self.task
        text = ""
        for count, instruction in self.stream.instructions:
            if count <= index:
                text = instruction
        return text

    def __iter__(self) -> Iterator[GridFrame]:
        names = self.stream.contract.action_names
        waiting: deque[GridFrame] = deque()  # frames whose target is not recorded yet
        episode, t_next, current, current_task = -1, None, None, ""
        slack = STAMP_SLACK * self.dt

        def ready(final: bool) -> Iterator[GridFrame]:
            self._take_truth()
            while waiting and (final or np.all(self._known_until >= waiting[0].t)):
                frame = waiting.popleft()
                if np.any(self._known_from > frame.t):
                    self.counts.before_targets += 1  # before the recorded targets begin
                    continue
                action = self._action(frame.t)
                if not np.all(np.isfinite(action)):
                    if final:
                        self.counts.after_targets += 1  # beyond the end of the recorded targets
                        continue
                    missing = [n for n, v in zip(names, action, strict=True) if not np.isfinite(v)]
                    raise ValueError(f"{self.stream.bag}: no recorded {self.stream.truth_source} give a target "
                                     f"for {missing[:4]} at {frame.t:.3f} s")
                self.counts.frames += 1
                yield GridFrame(frame.episode, frame.t, frame.snapshot, frame.task, action)
            if waiting and waiting[-1].t - waiting[0].t > TRUTH_WAIT_S:
                missing = [n for n, t in zip(names, self._known_until, strict=True) if t < waiting[0].t]
                raise ValueError(f"{self.stream.bag}: the recorded {self.stream.truth_source} give no target for "
                                 f"{missing[:4]} after {waiting[0].t:.3f} s: this bag cannot give `action`")

        for index, snap in enumerate(self.stream):
            task = self._task_of(index)
            if not task:
                self.counts.untasked_observations += 1
            # grid times this observation closes: those before it, which the previous observation held
            while current is not None and t_next is not None and t_next < snap.t_obs - slack:
                if t_next - current.t_obs > self.max_observation_age_s:
                    self.counts.gaps += 1
                    t_next = None  # camera gap: the episode ends; the next observation starts one
                    break
                waiting.append(GridFrame(episode, t_next, current, current_task, np.zeros(0)))
                t_next += self.dt
            yield from ready(final=False)
            new_episode = t_next is None or (self.split == "instruction" and task != current_task)
            current, current_task = snap, task
            if not task:
                t_next = None
                continue
            if new_episode:
                episode += 1
                self.counts.episodes += 1
                t_next = snap.t_obs
        if current is not None and t_next is not None and current_task and t_next <= current.t_obs + slack:
            waiting.append(GridFrame(episode, t_next, current, current_task, np.zeros(0)))
        yield from ready(final=True)
