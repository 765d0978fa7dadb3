"""What a bag keeps of how it was recorded: the checkpoint by its weights' hashes, and a capture audit that
finds every gap in a stream."""

from __future__ import annotations

import hashlib

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from wall_oss_ros.tools.provenance import GAP_FACTOR, audit_table, capture_audit, checkpoint_identity, provenance


def test_a_checkpoint_is_named_by_the_hash_of_every_weights_file(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"\x01" * 1000)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "expert.safetensors").write_bytes(b"\x02" * 10)
    (tmp_path / "config.json").write_text("{}")
    identity = checkpoint_identity(str(tmp_path))
    assert identity["path"] == str(tmp_path.resolve())
    assert {w["file"]: (w["bytes"], w["sha256"]) for w in identity["weights"]} == {
        "model.safetensors": (1000, hashlib.sha256(b"\x01" * 1000).hexdigest()),
        "sub/expert.safetensors": (10, hashlib.sha256(b"\x02" * 10).hexdigest())}
    assert "no weights" in checkpoint_identity(str(tmp_path / "missing"))["note"]
    assert checkpoint_identity("")["path"] == ""


def test_the_instruction_parameter_comes_first_then_the_topics_in_order(tmp_path):
    record = provenance([(1.5, "stack the cups"), (9.0, "")], {"policy_node": {"instruction": "wipe",
                                                                                 "checkpoint": ""}})
    assert [(i["source"], i["text"]) for i in record["instructions"]] == [
        ("policy_node instruction parameter", "wipe"), ("/instruction", "stack the cups"), ("/instruction", "")]
    assert record["parameters"]["policy_node"]["instruction"] == "wipe"


@given(rate=st.sampled_from([10.0, 30.0, 100.0]), n=st.integers(20, 200),
       gaps=st.lists(st.tuples(st.integers(1, 199), st.floats(2.5, 20.0)), max_size=5, unique_by=lambda g: g[0]),
       jitter=st.floats(0.0, 0.3))
def test_the_audit_finds_every_gap_and_only_the_gaps(rate, n, gaps, jitter):
    """A stream at `rate` with up to ±30 % jitter per interval and some intervals stretched to 2.5–20
    periods: exactly the stretched ones are gaps, the longest is the longest stretch, the rate is near."""
    rng = np.random.default_rng(n)
    intervals = (1.0 + rng.uniform(-jitter, jitter, n - 1)) / rate
    stretched = {i: f for i, f in gaps if i < n - 1}
    for i, factor in stretched.items():
        intervals[i] = factor / rate
    times = np.concatenate([[100.0], 100.0 + np.cumsum(intervals)])
    (row,) = capture_audit({"/camera": times}, {"/camera": rate})
    assert row["messages"] == n and row["gaps"] == len(stretched)
    assert row["longest_gap_s"] == round(float(intervals.max()), 4)
    assert (row["gaps"] == 0) == all(f <= GAP_FACTOR for f in stretched.values())
    (nominal,) = capture_audit({"/camera": times})  # no expected rate: the median interval's
    assert abs(nominal["expected_hz"] - rate) <= rate * 0.35
    assert f"| `/camera` | {n} |" in audit_table([row])[2]


def test_a_topic_with_one_message_or_none_is_audited_without_a_rate():
    rows = capture_audit({"/estop": [], "/instruction": [3.0]})
    assert [(r["messages"], r["rate_hz"], r["gaps"], r["longest_gap_s"]) for r in rows] == [(0, None, 0, None),
                                                                                         (1, None, 0, None)]
