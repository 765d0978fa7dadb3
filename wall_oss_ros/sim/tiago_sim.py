"""TIAGo++ in MuJoCo, built from example-robot-data's URDF: arms, torso, head and Hey5 hands on position
servos, a differential-drive base, a table with objects, and cameras in the head and on both wrists.

The URDF is imported by MuJoCo's own URDF compiler after three repairs it needs: the collision meshes are
COLLADA files MuJoCo cannot read (dropped: the robot's geometry is its visual STL meshes, which take no
contacts, so the arms move as commanded through anything: self-collision is the executor's business, and
is checked on the URDF's collision model there); some links' inertia tensors are not positive definite
(replaced by isotropic ones of the same largest moment: the arms are position-servoed with gravity
compensation, so their inertia only shapes the servo lag); and the base is fixed (it gets planar joints).
The base is kinematic: each physics step it moves with the commanded twist (vx, wz; a diff drive has no
vy), as a base controller on flat ground does; wheel slip is not simulated. A Hey5 hand closes every
finger with its grasp motor (hand_<side>_mrl_joint), each finger joint in proportion over its range.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from wall_oss_ros.core.resources import package_share

ARM_JOINTS = tuple(f"arm_{side}_{i}_joint" for side in ("left", "right") for i in range(1, 8))
HAND_JOINTS = ("hand_left_mrl_joint", "hand_right_mrl_joint")
JOINT_NAMES = (*ARM_JOINTS, *HAND_JOINTS, "torso_lift_joint", "head_1_joint", "head_2_joint")
GRASP_RANGE_RAD = 6.0  # the grasp motor's travel from open (0) to closed
HOME = {**{f"arm_{side}_{i}_joint": v for side in ("left", "right")
           for i, v in zip(range(1, 8), (0.3, -0.6, 2.2, 2.0, -0.2, 1.2, -0.5), strict=True)},
        "torso_lift_joint": 0.2, "head_2_joint": -0.4}  # arms in front, head looking at the table [rad, m]
# Camera name → (body, position in it [m], image right and up as body axes); each looks along its body's x.
CAMERAS = {"head": ("head_2_link", (0.11, 0.08, 0.0), ((0, 0, 1), (0, 1, 0))),
           "left_wrist": ("arm_left_tool_link", (-0.06, 0.0, -0.07), ((0, 1, 0), (0, 0, -1))),
           "right_wrist": ("arm_right_tool_link", (-0.06, 0.0, 0.07), ((0, -1, 0), (0, 0, 1)))}
# Position servos (kp [N·m/rad or N/m], kv [per rad/s or m/s]): stiff enough to follow within tens of ms.
SERVO = {"arm": (3000.0, 100.0), "torso_lift_joint": (50000.0, 5000.0), "head": (1000.0, 20.0), "hand": (20.0, 1.0)}


def _urdf_path() -> Path:
    return package_share("example-robot-data") / "robots" / "tiago_description" / "robots" / "tiago_dual.urdf"


def _isotropic(match: re.Match) -> str:
    largest = max([abs(float(v)) for v in re.findall(r'i(?:xx|yy|zz)="([^"]+)"', match.group(0))] + [1e-5])
    return f'<inertia ixx="{largest}" ixy="0" ixz="0" iyy="{largest}" iyz="0" izz="{largest}"/>'


def mujoco_urdf() -> str:
    """The URDF as MuJoCo's compiler can take it (see the module docstring)."""
    share = package_share("example-robot-data")
    text = _urdf_path().read_text()
    for element in ("collision", "gazebo", "transmission"):
        text = re.sub(rf"<{element}.*?</{element}>", "", text, flags=re.S)
    text = re.sub(r"<visual>(?:(?!</visual>).)*?\.dae.*?</visual>", "", text, flags=re.S)
    text = re.sub(r"<inertia [^>]*/>", _isotropic, text)
    text = text.replace("package://example-robot-data/", f"{share}/")
    return re.sub(r'(<robot name="[^"]*">)', r'\1<mujoco><compiler discardvisual="false" strippath="false" '
                  r'fusestatic="false"/></mujoco>', text, count=1)


def _camera_quat(right: tuple[float, ...], up: tuple[float, ...]) -> list[float]:
    """Orientation (w, x, y, z) of a MuJoCo camera (x right, y up, looking along -z) looking along its
    body's +x with these image right and up axes."""
    from scipy.spatial.transform import Rotation

    axes = np.array([right, up, (-1.0, 0.0, 0.0)], dtype=float).T  # camera x, y, z as columns
    x, y, z, w = Rotation.from_matrix(axes).as_quat()
    return [w, x, y, z]


def build_model():  # noqa: ANN201 - mujoco.MjModel
    import mujoco

    spec = mujoco.MjSpec.from_string(mujoco_urdf())
    spec.option.timestep = 0.002
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST  # stiff servos, damping taken implicitly
    world = spec.worldbody
    world.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[5, 5, 0.1], rgba=[0.55, 0.6, 0.65, 1])
    world.add_light(pos=[0.5, 0, 3.0], dir=[0, 0, -1], diffuse=[0.9, 0.9, 0.9])
    table = world.add_body(name="table", pos=[0.85, 0.0, 0.72])
    table.add_geom(type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.3, 0.6, 0.02], rgba=[0.6, 0.45, 0.3, 1])
    for i, (y, rgba) in enumerate(((-0.25, [0.9, 0.2, 0.2, 1]), (0.0, [0.2, 0.7, 0.3, 1]), (0.25, [0.2, 0.3, 0.9, 1]))):
        block = world.add_body(name=f"block_{i}", pos=[0.75, y, 0.77])
        block.add_geom(type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.025, 0.025, 0.03], rgba=rgba)
    base = spec.body("base_footprint")
    for name, kind, axis in (("base_x", mujoco.mjtJoint.mjJNT_SLIDE, [1, 0, 0]),
                             ("base_y", mujoco.mjtJoint.mjJNT_SLIDE, [0, 1, 0]),
                             ("base_yaw", mujoco.mjtJoint.mjJNT_HINGE, [0, 0, 1])):
        base.add_joint(name=name, type=kind, axis=axis)
    for body in spec.bodies:
        if body.name not in ("world", "table") and not body.name.startswith("block_"):
            body.gravcomp = 1.0
    for geom in spec.geoms:
        geom.contype, geom.conaffinity = 0, 0
    for joint in spec.joints:
        joint.armature, joint.damping = 0.01, [0.5, 0.0, 0.0]
    for name in (*ARM_JOINTS, *HAND_JOINTS, "torso_lift_joint", "head_1_joint", "head_2_joint", *_finger_joints(spec)):
        kp, kv = SERVO["arm" if name.startswith("arm_") else "hand" if name.startswith("hand_")
                       else name if name in SERVO else "head"]
        actuator = spec.add_actuator(name=name, target=name, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        actuator.set_to_position(kp=kp, kv=kv)
    for name, (body, pos, (right, up)) in CAMERAS.items():
        spec.body(body).add_camera(name=name, pos=list(pos), quat=_camera_quat(right, up), fovy=58.0)
    return spec.compile()


def _finger_joints(spec) -> list[str]:  # noqa: ANN001 - mujoco.MjSpec
    return [j.name for j in spec.joints if j.name.startswith("hand_") and
            ("_flex_" in j.name or "_virtual_" in j.name)]


class TiagoSim:
    """Steps the physics under joint targets and a base twist; renders the cameras on demand."""

    joint_names = JOINT_NAMES
    cameras = tuple(CAMERAS)
    model_path = str(_urdf_path())

    def __init__(self, width: int = 320, height: int = 240) -> None:
        import mujoco

        self._mujoco = mujoco
        self.model = build_model()
        self.data = mujoco.MjData(self.model)
        m = self.model
        self._qpos = np.array([m.joint(n).qposadr[0] for n in JOINT_NAMES])
        self._qvel = np.array([m.joint(n).dofadr[0] for n in JOINT_NAMES])
        self._act = np.array([m.actuator(n).id for n in JOINT_NAMES])
        fingers = [m.joint(i).name for i in range(m.njnt) if m.joint(i).name.startswith("hand_")
                   and ("_flex_" in m.joint(i).name or "_virtual_" in m.joint(i).name)]
        self._fingers = {side: (np.array([m.actuator(n).id for n in fingers if f"hand_{side}_" in n]),
                                np.array([m.jnt_range[m.joint(n).id][1] for n in fingers if f"hand_{side}_" in n]))
                         for side in ("left", "right")}
        self._base = np.array([m.joint(n).qposadr[0] for n in ("base_x", "base_y", "base_yaw")])
        self._base_dof = np.array([m.joint(n).dofadr[0] for n in ("base_x", "base_y", "base_yaw")])
        for name, value in HOME.items():
            self.data.qpos[m.joint(name).qposadr[0]] = value
        self.data.ctrl[self._act] = self.data.qpos[self._qpos]
        mujoco.mj_forward(m, self.data)
        self.timestep_s = float(m.opt.timestep)
        self._renderer = mujoco.Renderer(m, height, width)
        self.base_twist = np.zeros(2)  # commanded (vx [m/s], wz [rad/s]) in the base frame

    @property
    def time_s(self) -> float:
        return float(self.data.time)

    def joint_positions(self) -> np.ndarray:
        return self.data.qpos[self._qpos].copy()

    def joint_velocities(self) -> np.ndarray:
        return self.data.qvel[self._qvel].copy()

    def base_pose(self) -> np.ndarray:
        """(x [m], y [m], yaw [rad]) of base_footprint in the world (odometry that does not drift)."""
        return self.data.qpos[self._base].copy()

    def base_velocity(self) -> np.ndarray:
        """(vx [m/s], wz [rad/s]) in the base frame, as the base moved."""
        vx, vy, wz = self.data.qvel[self._base_dof]
        yaw = self.data.qpos[self._base[2]]
        return np.array([math.cos(yaw) * vx + math.sin(yaw) * vy, wz])

    def step(self, targets: np.ndarray, duration_s: float) -> None:
        """Hold the joint targets (JOINT_NAMES order) and the base twist for duration_s of physics."""
        d, mujoco = self.data, self._mujoco
        d.ctrl[self._act] = targets
        for index, side in enumerate(("left", "right")):
            actuators, upper = self._fingers[side]
            d.ctrl[actuators] = np.clip(targets[len(ARM_JOINTS) + index] / GRASP_RANGE_RAD, 0.0, 1.0) * upper
        for _ in range(max(1, round(duration_s / self.timestep_s))):
            yaw = d.qpos[self._base[2]]
            vx, wz = self.base_twist
            d.qvel[self._base_dof] = (vx * math.cos(yaw), vx * math.sin(yaw), wz)
            mujoco.mj_step(self.model, d)

    def render(self, camera: str = "head") -> np.ndarray:
        self._renderer.update_scene(self.data, camera=camera)
        return self._renderer.render()

    def close(self) -> None:
        self._renderer.close()
