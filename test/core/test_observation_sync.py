"""Observation synchronisation: the joint states stamped nearest the frame, waited for while in flight."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from test.support.robots import contract, rest_state
from wall_oss_ros.core.observation import ObservationAssembler

C = contract("aloha_bimanual")
REST = dict(rest_state(C).joints)


def joints_at(value: float) -> dict[str, float]:
    return {name: value for name in REST}


def test_uses_the_joint_states_nearest_the_frame_not_the_latest():
    a = ObservationAssembler(C, sync_tolerance_s=0.05, max_age_s=1.0)
    for k in range(10):  # 100 Hz joint states from t = 1.00 to 1.09, value = their time
        a.add_joints(1.0 + 0.01 * k, joints_at(1.0 + 0.01 * k))
    a.add_frame("top", 1.032, object())
    snap, why = a.snapshot(now=1.1)
    assert snap is not None, why
    assert snap.t_obs == 1.032 and np.allclose(snap.state, 1.03)


def test_waits_for_joint_states_up_to_the_frame_then_proceeds():
    a = ObservationAssembler(C, sync_tolerance_s=0.05, max_age_s=1.0)
    a.add_joints(1.00, joints_at(1.0))
    a.add_frame("top", 1.02, object())
    snap, why = a.snapshot(now=1.03)  # the 1.02 joint state may be in flight
    assert snap is None and "waiting" in why
    a.add_joints(1.02, joints_at(1.02))
    snap, _ = a.snapshot(now=1.03)
    assert snap is not None and np.allclose(snap.state, 1.02)


def test_without_a_joint_state_after_the_frame_it_waits_then_reports_staleness():
    a = ObservationAssembler(C, sync_tolerance_s=0.05, max_age_s=0.5)
    a.add_joints(1.00, joints_at(1.0))
    a.add_frame("top", 1.03, object())
    for now in (1.09, 1.3, 1.52):  # 30 ms apart would be within tolerance, but a nearer one may come
        snap, why = a.snapshot(now=now)
        assert snap is None and "waiting" in why
    snap, why = a.snapshot(now=1.54)
    assert snap is None and "stale" in why


@settings(max_examples=60, deadline=None)
@given(stamps=st.lists(st.floats(0.0, 2.0), min_size=1, max_size=40), t_frame=st.floats(0.0, 2.0))
def test_any_arrival_order_gives_the_nearest_in_order_joint_state_or_a_reason(stamps, t_frame):
    a = ObservationAssembler(C, sync_tolerance_s=0.05, max_age_s=10.0)
    stamps = [*stamps, t_frame + 0.02]  # one joint state after the frame: the observation can form
    in_order = []
    for s in stamps:
        if s >= a.joint_stamp:
            in_order.append(s)
        a.add_joints(s, joints_at(s))
    a.add_frame("top", t_frame, object())
    snap, why = a.snapshot(now=t_frame + 1.0)
    kept = [s for s in in_order if s >= in_order[-1] - ObservationAssembler.HISTORY_S]  # the history's span
    nearest = min(kept, key=lambda s: abs(s - t_frame))
    if abs(nearest - t_frame) > 0.05:
        assert snap is None and "synchronised" in why
    else:
        assert snap is not None and np.allclose(snap.state, nearest)
