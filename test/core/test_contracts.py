"""Robot contracts: the shipped ones load, bad ones fail naming file, key and reason."""

from __future__ import annotations

import copy
import math

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from test.support.robots import CONTRACTS, contract
from wall_oss_ros.core.contract import ContractError, GroupKind, OutputKind, load_contract, parse_contract
from wall_oss_ros.core.resources import config_path


@pytest.mark.parametrize(("name", "dim", "groups"), [
    ("aloha_bimanual", 14, ["left_arm", "left_gripper", "right_arm", "right_gripper"]),
    ("bimanual_ee", 20, ["left_ee", "left_gripper", "right_ee", "right_gripper"]),
    ("mobile_manipulator", 26, ["left_ee", "left_gripper", "right_ee", "right_gripper", "base", "lift", "head"]),
])
def test_shipped_contracts_load(name, dim, groups):
    c = contract(name)
    assert c.action_dim == dim
    assert [g.name for g in c.groups] == groups
    assert len(set(c.action_names)) == dim
    slots = [s for g in c.groups for s in g.action_slots]
    assert sorted(slots) == sorted(set(slots)) and max(slots) < c.max_action_dim


def test_aloha_contract_matches_the_mjcf_model():
    import mujoco

    c = contract("aloha_bimanual")
    arm = c.group("left_arm")
    model = mujoco.MjModel.from_xml_path(arm.kinematics.path)
    for joint, lim in zip(arm.axes, arm.limits, strict=True):
        lo, hi = model.joint(joint).range
        assert (lim.position_min, lim.position_max) == pytest.approx((lo, hi), abs=1e-4), joint
    assert arm.output.kind is OutputKind.JTC and c.group("left_gripper").kind is GroupKind.GRIPPER


@pytest.mark.parametrize("side", ["left", "right"])
def test_aloha_gripper_range_is_what_the_mjcf_fingers_reach(side):
    """gym-aloha normalises the finger position with the real ViperX's open/close constants; its MJCF fingers
    travel only part of that span, and the contract's range is that part (no command the model cannot reach)."""
    import mujoco
    from gym_aloha.constants import normalize_puppet_gripper_position as normalise

    c = contract("aloha_bimanual")
    (lim,) = c.group(f"{side}_gripper").limits
    model = mujoco.MjModel.from_xml_path(c.group(f"{side}_arm").kinematics.path)
    lo, hi = (normalise(x) for x in model.joint(f"vx300s_{side}/left_finger").range)
    assert 0.06 < lo < hi < 0.98  # the fingers do not span the normalised 0…1
    assert lo <= lim.position_min < lo + 1e-3 and hi - 1e-3 < lim.position_max <= hi


def test_mobile_manipulator_layout():
    c = contract("mobile_manipulator")
    base = c.group("base")
    assert base.axes == ("vx", "vy", "wz") and base.output.kind is OutputKind.TWIST_STAMPED
    assert c.group("lift").unit == "m" and c.group("head").unit == "rad"
    ee = c.group("left_ee")
    assert ee.action_dim == 9 and len(ee.limits) == 6 and ee.rotation_frame == "base"


def _aloha_dict() -> dict:
    return yaml.safe_load(config_path("robots", "aloha_bimanual.yaml").read_text())


def _set(d: dict, path: str, value: object) -> dict:
    d = copy.deepcopy(d)
    keys = path.split(".")
    target = d
    for k in keys[:-1]:
        target = target[int(k)] if isinstance(target, list) else target[k]
    last = keys[-1]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return d


_DELETE = object()
BAD = [
    ("dt_s", -0.02, "dt_s", "positive"),
    ("dt_s", _DELETE, "dt_s", "required key is missing"),
    ("model.max_action_dim", "twenty", "model.max_action_dim", "expected a number"),
    ("groups.0.limits.velocity_max_rad_s", [3.14, 3.14], "groups[0].limits.velocity_max_rad_s", "6 values"),
    ("groups.0.limits.jerk_max_rad_s3", 0, "groups[0].limits.jerk_max_rad_s3", "positive"),
    ("groups.0.limits.position_min_rad", 5.0, "groups[0].limits.position_min_rad", "not below max"),
    ("groups.0.kind", "arm", "groups[0].kind", "not one of"),
    ("groups.0.output.kind", "twist", "groups[0].output.kind", "not one of"),
    ("groups.0.action_slots", [0, 1, 2, 3, 4, 99], "groups[0].action_slots", "not an integer in [0, 20)"),
    ("groups.1.action_slots", [0], "groups", "action slot 0 is used twice"),
    ("groups.0.joints", ["a", "a", "b", "c", "d", "e"], "groups[0].joints", "unique"),
    ("groups.0.velocity_limit", 3.0, "groups[0].velocity_limit", "unknown key"),
    ("groups.0.workspace.kinematics.mjcf", "missing.xml", "groups[0].workspace.kinematics.mjcf", "file not found"),
    ("groups.0.workspace.kinematics.mjcf", "pkg://no_such_pkg/x.xml", "groups[0].workspace.kinematics.mjcf",
     "not installed"),
    ("groups.0.limits.position_min_rad", _DELETE, "groups[0].limits.position_min_rad", "no position limits"),
    ("groups.1.joints", ["a", "b"], "groups[1].joints", "exactly one axis"),
]


@pytest.mark.parametrize(("path", "value", "key", "reason"), BAD, ids=[b[0] + ":" + str(b[3]) for b in BAD])
def test_bad_contract_names_file_key_and_reason(tmp_path, path, value, key, reason):
    file = tmp_path / "robot.yaml"
    file.write_text(yaml.safe_dump(_set(_aloha_dict(), path, value)))
    with pytest.raises(ContractError) as info:
        load_contract(file)
    err = info.value
    assert err.source == str(file)
    assert err.key == key, str(err)
    assert reason in err.reason, str(err)
    assert str(file) in str(err) and key in str(err)


def test_unreadable_and_invalid_yaml(tmp_path):
    with pytest.raises(ContractError, match="cannot read"):
        load_contract(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(ContractError, match="not valid YAML"):
        load_contract(bad)


def _leaves(d: object, prefix: str = "") -> list[str]:
    if isinstance(d, dict):
        return [p for k, v in d.items() for p in _leaves(v, f"{prefix}{k}.")]
    if isinstance(d, list) and d and isinstance(d[0], dict):
        return [p for i, v in enumerate(d) for p in _leaves(v, f"{prefix}{i}.")]
    return [prefix[:-1]]


junk = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                 st.text(max_size=5), st.lists(st.floats(allow_nan=True), max_size=8),
                 st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@settings(max_examples=150, deadline=None)
@given(data=st.data(), value=junk)
def test_any_corrupted_value_gives_a_contract_error_or_a_valid_contract(data, value):
    doc = _aloha_dict()
    path = data.draw(st.sampled_from(_leaves(doc)))
    try:
        c = parse_contract(_set(doc, path, value), "fuzz.yaml", config_path("robots"))
    except ContractError as exc:
        assert exc.source == "fuzz.yaml" and exc.key and exc.reason
        return
    for g in c.groups:
        for lim in g.limits:
            assert lim.velocity_max > 0 and lim.acceleration_max > 0 and lim.jerk_max > 0
            assert not math.isnan(lim.position_min) and lim.position_min < lim.position_max


@pytest.mark.parametrize("name", CONTRACTS)
def test_contracts_are_values(name):
    assert contract(name) == load_contract(config_path("robots", f"{name}.yaml"))


def test_tiago_contract_arms_go_through_ik_within_the_urdf_limits():
    """The 26-D TIAGo++ contract: its arms' joint limits are the URDF's (with margin), the poses are in the
    arm mount's frame, and the base is a diff drive (vx, wz) in slots 20 and 22."""
    import pinocchio as pin

    c = contract("tiago_dual")
    assert c.action_dim == 25 and c.max_action_dim == 26
    model = pin.buildModelFromUrdf(c.group("left_arm").ik.urdf)
    for name in ("left_arm", "right_arm"):
        g = c.group(name)
        assert g.kind is GroupKind.EE_POSE and g.output.kind is OutputKind.JTC and not g.state_topic
        assert g.ik.base_frame == "torso_lift_link" and len(g.joints) == 7
        for joint, lim in zip(g.joints, g.joint_limits, strict=True):
            index = model.joints[model.getJointId(joint)].idx_q
            assert (lim.position_min, lim.position_max) == pytest.approx(
                (model.lowerPositionLimit[index], model.upperPositionLimit[index]))
    base = c.group("base")
    assert base.axes == ("vx", "wz") and base.action_slots == (20, 22)
    assert c.self_collision.stop_distance_m < c.self_collision.proximity_threshold_m


def _tiago_dict() -> dict:
    return yaml.safe_load(config_path("robots", "tiago_dual.yaml").read_text())


TIAGO_BAD = [
    ("groups.0.ik.joints", [f"arm_left_{i}_joint" for i in range(1, 7)] + ["nope"], "groups[0].ik.joints",
     "has no joints"),
    ("groups.0.ik.limits.position_max_rad", 9.0, "groups[0].ik.limits.position_min_rad", "within the URDF"),
    ("groups.0.ik.limits.position_margin_rad", 2.0, "groups[0].ik.limits.position_margin_rad", "no room"),
    ("groups.0.ik.urdf", "package://no_such_package/x.urdf", "groups[0].ik.urdf", "no_such_package"),
    ("groups.0.ik.singularity.stop_condition", 10.0, "groups[0].ik.singularity.decelerate_condition", "below"),
    ("groups.0.output.kind", "pose_stamped", "groups[0].output.kind", "not one of"),
    ("self_collision.stop_distance_m", 0.5, "self_collision.stop_distance_m", "below proximity"),
    ("self_collision.pairs", [["left_arm", "elbows"]], "self_collision.pairs", "not a pair of link_sets"),
]


@pytest.mark.parametrize(("path", "value", "key", "reason"), TIAGO_BAD, ids=[b[0] + ":" + b[3] for b in TIAGO_BAD])
def test_bad_ik_and_self_collision_sections_name_the_key(tmp_path, path, value, key, reason):
    file = tmp_path / "robot.yaml"
    file.write_text(yaml.safe_dump(_set(_tiago_dict(), path, value)))
    with pytest.raises(ContractError) as info:
        load_contract(file)
    assert info.value.key == key and reason in info.value.reason, str(info.value)
