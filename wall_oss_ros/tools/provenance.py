"""What a bag was recorded with, for whoever replays, evaluates or trains on it later: the checkpoint's
identity (path and a hash of each weights file), the instructions given, the nodes' parameters, and a
capture audit (per topic: messages, rate, gaps). Stored as JSON under rosbag2's custom metadata
(metadata.yaml `custom_data`), next to the robot contract, so any rosbag2 reader sees it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

PROVENANCE_KEY = "wall_oss_ros/provenance"
AUDIT_KEY = "wall_oss_ros/capture_audit"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
GAP_FACTOR = 2.0  # an interval longer than this many nominal periods is a gap
HASH_CHUNK_BYTES = 16 * 1024 * 1024


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(HASH_CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def checkpoint_identity(checkpoint: str) -> dict[str, Any]:
    """The checkpoint's path and, where it is readable here, every weights file under it with its size and
    SHA-256 (a remote policy's checkpoint lives on the server: then only the path is known)."""
    if not checkpoint:
        return {"path": "", "note": "no checkpoint (a remote policy, or none configured)"}
    root = Path(checkpoint)
    files = sorted(p for p in root.rglob("*") if p.suffix in WEIGHT_SUFFIXES) if root.is_dir() else []
    if root.is_file():
        files = [root]
    if not files:
        return {"path": str(root), "note": "no weights file readable on the recording machine"}
    return {"path": str(root.resolve()), "weights": [
        {"file": str(p.relative_to(root)) if p != root else p.name, "bytes": p.stat().st_size,
         "sha256": sha256_of(p)} for p in files]}


def capture_audit(receive_times: Mapping[str, Sequence[float]], expected_hz: Mapping[str, float] | None = None,
                  duration_s: float | None = None) -> list[dict[str, Any]]:
    """Per topic: messages, the achieved rate, the expected one (given, else the nominal rate of its median
    interval), and its gaps (intervals over GAP_FACTOR expected periods): how many and the longest [s]."""
    out = []
    for topic, times in receive_times.items():
        t = np.sort(np.asarray(times, dtype=float))
        row: dict[str, Any] = {"topic": topic, "messages": len(t)}
        intervals = np.diff(t)
        nominal = float(1.0 / np.median(intervals)) if len(intervals) and np.median(intervals) > 0 else None
        expected = (expected_hz or {}).get(topic, nominal)
        span = duration_s if duration_s else (float(t[-1] - t[0]) if len(t) > 1 else 0.0)
        row["rate_hz"] = round(len(t) / span, 3) if span > 0 else None
        row["expected_hz"] = round(expected, 3) if expected else None
        if expected and len(intervals):
            gaps = intervals[intervals > GAP_FACTOR / expected]
            row["gaps"], row["longest_gap_s"] = len(gaps), round(float(intervals.max()), 4)
        else:
            row["gaps"], row["longest_gap_s"] = 0, None
        out.append(row)
    return out


def provenance(instructions: Sequence[tuple[float, str]], parameters: Mapping[str, Mapping[str, Any]]) -> dict:
    """instructions: (receive time [s], text) on /instruction, in order; parameters: node name → {parameter:
    value}. The checkpoint is the policy node's; its instruction parameter, the task until /instruction says
    otherwise, comes first."""
    policy = parameters.get("policy_node", {})
    given = [{"source": "policy_node instruction parameter", "t_s": None, "text": policy["instruction"]}] \
        if policy.get("instruction") else []
    return {"checkpoint": checkpoint_identity(str(policy.get("checkpoint", ""))),
            "instructions": given + [{"source": "/instruction", "t_s": round(t, 6), "text": text}
                                     for t, text in instructions],
            "parameters": {node: dict(values) for node, values in parameters.items()}}


def custom_data(provenance_record: Mapping[str, Any], audit: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """The entries for rosbag2's custom_data (string values only)."""
    return {PROVENANCE_KEY: json.dumps(provenance_record, sort_keys=True),
            AUDIT_KEY: json.dumps(list(audit), sort_keys=True)}


def audit_table(audit: Sequence[Mapping[str, Any]]) -> list[str]:
    """The audit as Markdown table lines, for reports."""
    lines = ["| topic | messages | rate | expected | gaps | longest gap |", "|---|---|---|---|---|---|"]
    for r in audit:
        def hz(v: float | None) -> str:
            return "–" if v is None else f"{v:g} Hz"

        gap = "–" if r["longest_gap_s"] is None else f"{r['longest_gap_s']:.3f} s"
        lines.append(f"| `{r['topic']}` | {r['messages']} | {hz(r['rate_hz'])} | {hz(r['expected_hz'])} | "
                     f"{r['gaps']} | {gap} |")
    return lines
