"""Forward kinematics: pinocchio (URDF) and MuJoCo (MJCF) against the analytic answer of a planar arm."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wall_oss_ros.core.contract import KinematicModel
from wall_oss_ros.core.kinematics import make_kinematics

L1, L2, H = 0.4, 0.3, 0.1  # link lengths and shoulder height [m]

URDF = f"""<?xml version="1.0"?>
<robot name="planar">
  <link name="base"/><link name="upper"/><link name="fore"/><link name="tip"/>
  <joint name="shoulder" type="revolute"><parent link="base"/><child link="upper"/>
    <origin xyz="0 0 {H}"/><axis xyz="0 0 1"/><limit lower="-3" upper="3" effort="1" velocity="1"/></joint>
  <joint name="elbow" type="revolute"><parent link="upper"/><child link="fore"/>
    <origin xyz="{L1} 0 0"/><axis xyz="0 0 1"/><limit lower="-3" upper="3" effort="1" velocity="1"/></joint>
  <joint name="tool" type="fixed"><parent link="fore"/><child link="tip"/><origin xyz="{L2} 0 0"/></joint>
</robot>
"""

MJCF = f"""<mujoco model="planar"><worldbody>
  <body name="upper" pos="0 0 {H}"><joint name="shoulder" axis="0 0 1"/><geom size="0.01"/>
    <body name="fore" pos="{L1} 0 0"><joint name="elbow" axis="0 0 1"/><geom size="0.01"/>
      <body name="tip" pos="{L2} 0 0"><geom size="0.01"/></body></body></body>
</worldbody></mujoco>
"""


def analytic(q1: float, q2: float) -> np.ndarray:
    return np.array([L1 * math.cos(q1) + L2 * math.cos(q1 + q2), L1 * math.sin(q1) + L2 * math.sin(q1 + q2), H])


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("planar")
    (d / "planar.urdf").write_text(URDF)
    (d / "planar.xml").write_text(MJCF)
    joints = ("shoulder", "elbow")
    return [make_kinematics(KinematicModel(str(d / "planar.urdf"), "urdf", "tip", joints)),
            make_kinematics(KinematicModel(str(d / "planar.xml"), "mjcf", "tip", joints))]


@settings(max_examples=100, deadline=None)
@given(st.floats(-3, 3), st.floats(-3, 3))
def test_urdf_and_mjcf_match_the_analytic_planar_arm(models, q1, q2):
    for fk in models:
        np.testing.assert_allclose(fk.position(np.array([q1, q2])), analytic(q1, q2), atol=1e-9)


def test_unknown_names_are_refused(tmp_path):
    (tmp_path / "planar.urdf").write_text(URDF)
    with pytest.raises(ValueError, match="unknown joints"):
        make_kinematics(KinematicModel(str(tmp_path / "planar.urdf"), "urdf", "tip", ("shoulder", "wrist")))
    (tmp_path / "planar.xml").write_text(MJCF)
    with pytest.raises(ValueError):
        make_kinematics(KinematicModel(str(tmp_path / "planar.xml"), "mjcf", "hand", ("shoulder", "elbow")))


def test_tip_paths_start_at_the_command_and_follow_the_plan():
    from test.support.robots import contract, rest_action, rest_state
    from wall_oss_ros.core.chunk import Chunk
    from wall_oss_ros.core.executor import Executor
    from wall_oss_ros.core.tip_paths import tip_paths

    c = contract("aloha_bimanual")
    ex = Executor(c)
    ex.tick(0.0, rest_state(c))
    ex.start(0.0)
    ex.tick(0.01, rest_state(c, 0.01))
    values = np.tile(rest_action(c), (20, 1))
    values[:, 0] += np.linspace(0.0, 0.5, 20)  # left waist turns: the left tip sweeps, the right stays
    assert ex.on_chunk(Chunk(1, 0.01, c.dt_s, c.action_names, values), 0.01).accepted
    committed = ex.status(0.01).committed_values
    paths = tip_paths(ex, committed)
    assert set(paths) == {"left_arm", "right_arm"}
    left, right = paths["left_arm"], paths["right_arm"]
    assert left.shape == (1 + len(committed), 3)
    fk = ex.groups[0].fk
    np.testing.assert_allclose(left[0], fk.position(ex.command_positions[:6]))
    assert np.linalg.norm(left[-1] - left[0]) > 0.05 and np.ptp(right, axis=0).max() < 1e-9
