"""One clock for an open-loop evaluation, and a count of everything a bag's reading left out.

A bag holds two clocks per message: the header stamp (the sensor's or the executor's) and the receive
time rosbag2 stored (the recorder's). Timing observations by one and the recorded commands by the other
moved the ground truth by the offset between them, without a word (a sensor clock 0.5 s behind turned
MAE 1.767 into 1.818; zero stamps gave "MAE None" and exit 0). Here every series uses one time source,
the offset of each topic's headers from its receive times is measured, and a bag whose stamps cannot be
used on the chosen source is refused with the numbers. What is dropped (out of order, not finite) is
counted per topic and said.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

TIME_SOURCES = ("header", "receive")
WARN_DROPPED_SHARE = 0.01  # a topic that loses more than this share of its messages is warned about


@dataclass
class TopicAudit:
    messages: int = 0
    zero_stamps: int = 0
    out_of_order: int = 0  # dropped: its time was before the topic's previous message
    not_finite: int = 0  # dropped: NaN or infinite values
    offsets_s: list[float] = field(default_factory=list)  # receive time − header stamp
    last_s: float = -np.inf

    @property
    def dropped(self) -> int:
        return self.out_of_order + self.not_finite

    def summary(self) -> dict:
        offsets = np.asarray(self.offsets_s)
        return {"messages": self.messages, "zero_stamps": self.zero_stamps, "out_of_order_dropped": self.out_of_order,
                "not_finite_dropped": self.not_finite,
                "receive_minus_header_s": float(np.median(offsets)) if len(offsets) else None}


class RecordingAudit:
    """Per topic: the time of each message on the chosen source, and what was dropped."""

    def __init__(self, time_source: str = "header", max_clock_offset_s: float = 0.1) -> None:
        if time_source not in TIME_SOURCES:
            raise ValueError(f"time source must be one of {TIME_SOURCES}, got {time_source!r}")
        self.time_source, self.max_clock_offset_s = time_source, max_clock_offset_s
        self.topics: dict[str, TopicAudit] = {}
        self.unsynchronised: Counter[str] = Counter()  # why a received frame gave no observation

    def time(self, topic: str, header_s: float, receive_s: float) -> float | None:
        """The message's time on the chosen source, or None when it is dropped as out of order."""
        audit = self.topics.setdefault(topic, TopicAudit())
        audit.messages += 1
        if header_s == 0.0:
            audit.zero_stamps += 1
        else:
            audit.offsets_s.append(receive_s - header_s)
        t = header_s if self.time_source == "header" and header_s != 0.0 else receive_s
        if t < audit.last_s:
            audit.out_of_order += 1
            return None
        audit.last_s = t
        return t

    def not_finite(self, topic: str) -> None:
        self.topics.setdefault(topic, TopicAudit()).not_finite += 1

    def check(self, bag: object, sensors: tuple[str, ...]) -> None:
        """Refuse, with the numbers, a bag whose stamps the header time source cannot use: zero stamps on a
        sensor topic, or headers off their receive times by more than the tolerance (their clock is not the
        recorder's, by which unstamped commands are timed and the replay runs)."""
        if self.time_source != "header":
            return
        problems = []
        for topic, audit in sorted(self.topics.items()):
            if topic in sensors and audit.zero_stamps:
                problems.append(f"{topic}: {audit.zero_stamps} of {audit.messages} messages have a zero stamp")
            median = audit.summary()["receive_minus_header_s"]
            if median is not None and abs(median) > self.max_clock_offset_s:
                problems.append(f"{topic}: header stamps {median:+.3f} s off the receive times")
        if problems:
            raise ValueError(f"{bag}: the header stamps cannot be used as the clock ({'; '.join(problems)}; "
                             f"tolerance {self.max_clock_offset_s} s): fix the clocks, or evaluate on receive "
                             f"times with --time-source receive")

    def warnings(self) -> list[str]:
        out = []
        for topic, audit in sorted(self.topics.items()):
            if audit.messages and audit.dropped / audit.messages > WARN_DROPPED_SHARE:
                out.append(f"{topic}: {audit.dropped} of {audit.messages} messages dropped "
                           f"({audit.out_of_order} out of order, {audit.not_finite} not finite)")
        return out

    def summary(self) -> dict:
        return {"time_source": self.time_source, "topics": {t: a.summary() for t, a in sorted(self.topics.items())},
                "unsynchronised_frames": dict(self.unsynchronised.most_common()), "warnings": self.warnings()}
