"""End-effector groups on joint-space controllers: Cartesian limits, then IK, then the joint limiter.

Per tick and arm: the plan's pose target is kept in the workspace box and limited in Cartesian velocity,
acceleration and jerk (a limiter of its own, over x, y, z and the rotation's tangent); that limited
pose is solved for joint positions from the last joint command (core/inverse_kinematics.py); MoveIt
Servo's singularity scale shortens the step (zero: the arm brakes); the result is the joint target the
executor's own limiter follows within the joint limits, like any joint group's. When the joints could
not follow the Cartesian command (out of reach, a halt, a joint limit), the Cartesian state is taken
back to where the joint command puts the tip, so the two never drift apart and the Cartesian limits
hold for the arm's actual path.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np

from wall_oss_ros.core.contract import Group
from wall_oss_ros.core.inverse_kinematics import ArmIk, IkConfig, IkStatus, SingularityStatus
from wall_oss_ros.core.rotations import matrix_to_quat_one, matrix_to_rot6d, quat_to_matrix_one, tool_step_to, turned
from wall_oss_ros.core.safety.motion import MotionLimiter
from wall_oss_ros.core.safety.status import Intervention

# Joint command's tip this far from the Cartesian command: take the latter back even while both move freely
# (a joint-space lag while following stays well below; out of reach, halted or braked, it is taken back at once).
SYNC_POSITION_M = 0.02
SYNC_ANGLE_RAD = 0.1
SPEED_SHARE = 0.8  # joint speed (share of its limit) above which the Cartesian command is slowed down
SPEED_TOLERANCE = 1.02  # tip speed over the Cartesian limit a joint step may reach before it is refused


class IkArm:
    """One ee_pose group with IK: its action columns, joint axes in the executor's limiter, Cartesian axes."""

    def __init__(self, group: Group, cols: slice, axes: slice, cartesian: slice, ik: ArmIk) -> None:
        self.group, self.cols, self.axes, self.ik = group, cols, axes, ik
        self.cartesian = cartesian  # its 6 axes in the Cartesian limiter: position, then rotation
        self.pos = slice(cartesian.start, cartesian.start + 3)
        self.rot = slice(cartesian.start + 3, cartesian.stop)
        self.quat = np.array([0.0, 0.0, 0.0, 1.0])  # commanded orientation (x, y, z, w)
        self.ik_status = IkStatus.REACHED
        self.held = False  # this tick the joints could not follow the Cartesian command freely
        self.speed_scale = 1.0  # share of the Cartesian speed the joints' velocity limits allow (last tick)
        self.singularity = SingularityStatus.CLEAR
        self.condition = 1.0  # Jacobian condition number at the joint command
        self.stop_condition = 1.0  # ... at the end of the fastest stop from it (last accepted step)
        self.stop_speed_ratio = 0.0  # tip speed over its Cartesian limit, fastest of a state and its stop (same)


def arm_ik(group: Group) -> ArmIk:
    """The IK of an ee_pose group's `ik:` section, bounded by its joint limits with their margins."""
    spec = group.ik
    assert spec is not None
    config = IkConfig(singularity_decelerate_condition=spec.singularity_decelerate_condition,
                      singularity_stop_condition=spec.singularity_stop_condition,
                      leaving_singularity_multiplier=spec.leaving_singularity_multiplier)
    bounds = (np.array([lim.safe_min for lim in spec.limits]), np.array([lim.safe_max for lim in spec.limits]))
    return ArmIk(spec.urdf, spec.joints, spec.base_frame, spec.tip_frame, config=config, bounds=bounds)


@lru_cache(maxsize=16)
def arm_kinematics(group: Group) -> ArmIk:
    """One shared ArmIk per group for forward kinematics only (observations, reports): loading a URDF costs
    tens of ms. The executor keeps its own, whose solves carry state (posture, target)."""
    return arm_ik(group)


@lru_cache(maxsize=64)
def _stop_weights(count: int) -> np.ndarray:
    """(3, count) quadratic Lagrange weights, over a stop's ticks 1..count, of its start (tick 0), middle
    (tick count // 2) and end (tick count): the Jacobian along a stop interpolated from those three."""
    nodes = np.array([0.0, float(count // 2), float(count)])
    ticks = np.arange(1, count + 1, dtype=float)
    weights = np.array([np.prod([(ticks - nodes[j]) / (nodes[i] - nodes[j]) for j in range(3) if j != i], axis=0)
                        for i in range(3)])
    weights.flags.writeable = False
    return weights


class IkStage:
    """The Cartesian limiter and IK of every ee_pose group with IK."""

    def __init__(self, arms: list[IkArm], period_s: float) -> None:
        self.arms, self.period_s = arms, period_s
        limits = [lim for arm in arms for lim in arm.group.limits]
        self.cartesian = MotionLimiter(limits, [False] * len(limits), period_s)
        self.rotation_axes = np.zeros(len(limits), dtype=bool)
        for arm in arms:
            self.rotation_axes[arm.rot] = True
        self.safe_min = np.where(self.rotation_axes, -np.inf, [lim.safe_min for lim in limits])
        self.safe_max = np.where(self.rotation_axes, np.inf, [lim.safe_max for lim in limits])
        self.iterations = 0  # QP steps of every arm in the last tick

    def initialize(self, joints: np.ndarray) -> None:
        """Cartesian state := the tip pose of the joint command, at rest."""
        positions = np.zeros(self.cartesian.n)
        for arm in self.arms:
            xyz, rotation = arm.ik.forward(joints[arm.axes])
            positions[arm.pos] = xyz
            arm.quat = matrix_to_quat_one(rotation)
            arm.ik.set_posture(joints[arm.axes])
            arm.stop_condition = arm.ik.condition(joints[arm.axes])
        self.cartesian.reset(positions)

    def anchor(self, value: np.ndarray, rate: np.ndarray, rate2: np.ndarray) -> None:
        """The commanded poses (and linear rates) in action layout, where a new plan joins."""
        c = self.cartesian
        for arm in self.arms:
            value[arm.cols] = np.concatenate([c.p[arm.pos], matrix_to_rot6d(quat_to_matrix_one(arm.quat))])
            rate[arm.cols][:3], rate2[arm.cols][:3] = c.v[arm.pos], c.a[arm.pos]

    def poses(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Commanded tip pose of each arm: (xyz [m], quaternion x y z w) in its base frame."""
        return {arm.group.name: (self.cartesian.p[arm.pos].copy(), arm.quat.copy()) for arm in self.arms}

    def targets(self, value: np.ndarray, rate: np.ndarray, rate2: np.ndarray, joints: MotionLimiter,
                target_p: np.ndarray, target_v: np.ndarray, target_a: np.ndarray, brake: np.ndarray,
                note: Callable[[Intervention], None], collision_scale: float = 1.0) -> None:
        """Joint targets of the arms for this tick's plan sample, from the joint limiter's current state.

        Slowing down (singularity, collision_scale from the self-collision guard) shortens the Cartesian
        command's step, so the joints still follow the Cartesian command exactly; at zero it brakes."""
        accelerations, jerk_max, q_cmd = joints.a, joints.jerk_max, joints.p
        vmax, amax, dt = joints.velocity_max, joints.acceleration_max, self.period_s
        c = self.cartesian
        n = c.n
        c.p[self.rotation_axes] = 0.0  # rotation axes move in a chart centred on the commanded orientation
        cart_p, cart_v, cart_a = c.p.copy(), np.zeros(n), np.zeros(n)
        cart_brake = np.zeros(n, dtype=bool)
        scales = []
        for arm in self.arms:
            v = value[arm.cols]
            cart_p[arm.pos], cart_v[arm.pos], cart_a[arm.pos] = v[:3], rate[arm.cols][:3], rate2[arm.cols][:3]
            cart_p[arm.rot] = tool_step_to(arm.quat, v[3:9])
            rotation = quat_to_matrix_one(arm.quat)
            twist = np.concatenate([cart_p[arm.pos] - c.p[arm.pos], rotation @ cart_p[arm.rot]])  # where it heads
            scale, arm.singularity, arm.condition = arm.ik.singularity(q_cmd[arm.axes], twist)
            if arm.singularity is SingularityStatus.HALT:
                note(Intervention.SINGULARITY_HALT)
            elif arm.singularity is not SingularityStatus.CLEAR:
                note(Intervention.SINGULARITY_DECELERATE)
            scales.append(min(scale, collision_scale, arm.speed_scale))
        outside = (cart_p < self.safe_min) | (cart_p > self.safe_max)
        if outside.any():
            np.minimum(np.maximum(cart_p, self.safe_min, out=cart_p), self.safe_max, out=cart_p)
            cart_v[outside] = cart_a[outside] = 0.0
            note(Intervention.WORKSPACE_LIMIT)
        for arm, scale in zip(self.arms, scales, strict=True):
            axes = arm.cartesian
            if scale <= 0.0:
                cart_brake[axes] = True
            elif scale < 1.0:
                cart_p[axes] = c.p[axes] + scale * (cart_p[axes] - c.p[axes])
                cart_v[axes] *= scale
                cart_a[axes] *= scale
        c.step(cart_p, cart_v, cart_brake, cart_a)
        self.iterations = 0
        for arm in self.arms:
            axes = arm.axes
            arm.quat = turned(arm.quat, c.p[arm.rot])
            rotation = quat_to_matrix_one(arm.quat)
            q_now = q_cmd[arm.axes]
            # Each joint moves at most what it can in one tick, and no faster than it can still stop before
            # its bound from (half its acceleration, for the jerk phases): the joint limiter then never has
            # to brake an arm for a bound on its own, which would leave the Cartesian path.
            lo, hi, a_half = arm.ik.lower, arm.ik.upper, 0.5 * amax[axes]
            up = dt * np.minimum(vmax[axes], np.sqrt(2 * a_half * np.maximum(hi - q_now, 0.0)))
            down = dt * np.minimum(vmax[axes], np.sqrt(2 * a_half * np.maximum(q_now - lo, 0.0)))
            result = arm.ik.solve(q_now, c.p[arm.pos], rotation, min_iterations=1, reach=(-down, up))
            arm.ik_status = result.status
            self.iterations += result.iterations
            if result.status is IkStatus.UNREACHABLE:
                note(Intervention.IK_UNREACHABLE)
            arm.held = result.status in (IkStatus.UNREACHABLE, IkStatus.INVALID_TARGET)
            if result.status is IkStatus.INVALID_TARGET:
                brake[axes] = True
                target_p[axes], target_v[axes], target_a[axes] = q_now, 0.0, 0.0
            elif result.status is not IkStatus.REACHED:
                # Not on the Cartesian command (out of reach, or not there yet): the answer's own tip path is
                # not Cartesian-limited, so its step is shortened to what the Cartesian limits allow per tick.
                share = self._cartesian_share(arm, q_now, result.q)
                target_p[axes] = q_now + share * (result.q - q_now)
                target_v[axes] = share * (result.q - q_now) / dt
                target_a[axes] = 0.0
            else:
                # Feed-forward: the joint rates of the Cartesian command's velocity and acceleration
                # (pseudo-inverse of the Jacobian at the answer: at the last command instead, a tick's step
                # away, the tip overshoots the Cartesian limit more near a singularity). The acceleration only
                # as far as the joint's jerk reaches in one tick: mapped to the joints, the Cartesian profile's
                # ramps can ask for more, and a profile toward an unreachable acceleration swings the other
                # way first.
                inverse = np.linalg.pinv(arm.ik.jacobian(result.q), rcond=1e-3)
                twist = np.concatenate([c.v[arm.pos], rotation @ c.v[arm.rot]])
                accel = inverse @ np.concatenate([c.a[arm.pos], rotation @ c.a[arm.rot]])
                reach = jerk_max[axes] * self.period_s
                joint_rates = inverse @ twist
                # As MoveIt Servo enforces joint velocity limits: the whole vector scaled, so the tip keeps its
                # direction; and the next Cartesian steps shortened to what the joints can follow.
                ratio = float(np.max(np.abs(joint_rates) / vmax[axes]))
                arm.speed_scale = 1.0 if ratio <= SPEED_SHARE else SPEED_SHARE / ratio
                if ratio > 1.0:
                    joint_rates = joint_rates / ratio
                target_p[axes] = result.q
                target_v[axes] = joint_rates
                target_a[axes] = np.clip(accel, accelerations[axes] - reach, accelerations[axes] + reach)
            if result.status is not IkStatus.INVALID_TARGET:
                self._hold_tip_speed(arm, joints, target_p, target_v)
        c.p[self.rotation_axes] = 0.0

    def _hold_tip_speed(self, arm: IkArm, joints: MotionLimiter, target_p: np.ndarray, target_v: np.ndarray) -> None:
        """Shorten the joint servo's catch-up so the tip velocity it asks for stays within the Cartesian limits.

        The limiter's velocity servo asks for target_v plus gain · (target_p - where the joints will be): a joint
        command lagging its IK answer while the Cartesian command already moves at its limit would otherwise
        carry the tip past that limit to catch up. The feed-forward alone is within it (the Jacobian's
        pseudo-inverse of a limited twist); of the correction, the largest share that keeps every Cartesian
        axis within its limit (to first order, at the current joint command) is kept."""
        axes, dt = arm.axes, self.period_s
        q, v, a = joints.p[axes], joints.v[axes], joints.a[axes]
        predicted = q + (v + 0.5 * dt * a) * dt
        correction = joints.gain_per_s[axes] * (target_p[axes] - predicted)
        jac = arm.ik.tool_jacobian(q)  # angular rates in the tool frame, as the limiter has them
        base, extra = jac @ target_v[axes], jac @ correction
        limit = self.cartesian.velocity_max[arm.cartesian]
        share = 1.0
        for b, e, lim in zip(base.tolist(), extra.tolist(), limit.tolist(), strict=True):
            if abs(b + share * e) > lim:
                share = max(0.0, min(share, (math.copysign(lim, e) - b) / e)) if e != 0.0 else share
        if share < 1.0:
            target_p[axes] = predicted + share * (target_p[axes] - predicted)

    def _cartesian_share(self, arm: IkArm, q_now: np.ndarray, q_next: np.ndarray) -> float:
        """Share of the joint step q_now → q_next whose tip motion stays within one tick of the Cartesian
        velocity limits (per position axis, and the rotation angle), to first order."""
        xyz_now, rot_now = arm.ik.forward(q_now)
        xyz_next, rot_next = arm.ik.forward(q_next)
        c = self.cartesian
        allowed = c.velocity_max[arm.pos] * self.period_s
        moved = np.abs(xyz_next - xyz_now)
        cos_angle = min(1.0, max(-1.0, 0.5 * (float(np.trace(rot_next @ rot_now.T)) - 1.0)))
        turned = math.acos(cos_angle)
        share = min([1.0, *(allowed[moved > allowed] / moved[moved > allowed])])
        turn_allowed = float(c.velocity_max[arm.rot].min()) * self.period_s
        return min(share, turn_allowed / turned) if turned > turn_allowed else share

    def singular_stops(self, q: np.ndarray, path_q: np.ndarray) -> np.ndarray:
        """Axes of the arms whose new joint state q or fastest stop (joint limiter, path_q: (K, n), one per
        tick to rest, may be empty) would reach the singularity stop threshold, closer to it than the last
        accepted stop: that step must be refused. The condition number along a stop need not be largest at its
        end (a tip moving past the singular direction): in the decelerate band the new state and every tick of
        the stop are checked."""
        refused = np.zeros(len(q), dtype=bool)
        for arm in self.arms:
            config = arm.ik.config
            condition = arm.ik.condition((path_q[-1] if len(path_q) else q)[arm.axes])
            if condition > config.singularity_decelerate_condition and len(path_q):
                condition = max(condition, *(arm.ik.condition(p[arm.axes]) for p in (q, *path_q[:-1])))
            if condition >= config.singularity_stop_condition and condition > arm.stop_condition:
                refused[arm.axes] = True
            else:
                arm.stop_condition = condition
        return refused

    def fast_stops(self, q: np.ndarray, qd: np.ndarray, path_q: np.ndarray, path_qd: np.ndarray) -> np.ndarray:
        """Axes of the arms whose tip, at the new joint state (q, qd) or along its fastest stop (path_q, path_qd:
        (K, n), one per tick to rest), would move faster than the Cartesian limits (with SPEED_TOLERANCE),
        faster than at the last accepted step: that step must be refused.

        Joints that cannot follow their IK answers at once (jerk limits, where the joint rates a Cartesian
        motion needs change fast, near a singularity) move the tip off the limited Cartesian command, and
        joints braking each on its own no longer cancel at the tip: a stop can speed it up for as long as
        the accelerations take to ramp down. Refused, the arm takes the stop from the last state, checked
        the same way the tick before. Along the path the Jacobian is interpolated (quadratic in time through
        its start, middle and end), every tick of it checked."""
        refused = np.zeros(len(q), dtype=bool)
        c = self.cartesian
        for arm in self.arms:
            limit = c.velocity_max[arm.cartesian]
            axes = arm.axes
            twists = self._tip_twists(arm, q[axes], qd[axes], path_q[:, axes], path_qd[:, axes])
            ratio = float(np.max(np.abs(twists) / limit))
            if ratio > SPEED_TOLERANCE and ratio > arm.stop_speed_ratio:
                refused[axes] = True
            else:
                arm.stop_speed_ratio = ratio
        return refused

    @staticmethod
    def _tip_twists(arm: IkArm, q: np.ndarray, qd: np.ndarray, path_q: np.ndarray,
                    path_qd: np.ndarray) -> np.ndarray:
        """(1 + K, 6) tip twists (Cartesian limiter axes) of an arm's state and of its stop path's K ticks."""
        jac0 = arm.ik.tool_jacobian(q)
        count = len(path_q)
        if count <= 3:
            return np.array([jac0 @ qd, *(arm.ik.tool_jacobian(p) @ v for p, v in zip(path_q, path_qd, strict=True))])
        mid = count // 2 - 1
        jacs = np.array([jac0, arm.ik.tool_jacobian(path_q[mid]), arm.ik.tool_jacobian(path_q[-1])])
        along = np.einsum("nk,nij->kij", _stop_weights(count), jacs)
        return np.vstack([jac0 @ qd, np.einsum("kij,kj->ki", along, path_qd)])

    def follow_joints(self, joints: np.ndarray, velocities: np.ndarray, accelerations: np.ndarray,
                      braked: np.ndarray) -> None:
        """After the joint step: where the joints could not follow (held, braked: axes in `braked`) or their
        tip left the Cartesian command, take the latter back to the joint command's tip (pose, velocity and
        acceleration; J̇·q̇ neglected)."""
        c = self.cartesian
        for arm in self.arms:
            q, qd, qdd = joints[arm.axes], velocities[arm.axes], accelerations[arm.axes]
            xyz, rotation = arm.ik.forward(q)
            if not (arm.held or braked[arm.axes].any()):
                commanded = quat_to_matrix_one(arm.quat)
                cos_angle = 0.5 * (float(np.trace(rotation @ commanded.T)) - 1.0)
                if np.linalg.norm(xyz - c.p[arm.pos]) <= SYNC_POSITION_M and cos_angle >= math.cos(SYNC_ANGLE_RAD):
                    continue
            arm.held = False
            jac = arm.ik.jacobian(q)
            twist, accel = jac @ qd, jac @ qdd
            c.p[arm.pos], c.v[arm.pos], c.a[arm.pos] = xyz, twist[:3], accel[:3]
            arm.quat = matrix_to_quat_one(rotation)
            c.p[arm.rot], c.v[arm.rot], c.a[arm.rot] = 0.0, rotation.T @ twist[3:], rotation.T @ accel[3:]
            # Taken back within the Cartesian limits: the joints, following it, slow down to them. An
            # acceleration still raising the speed is cut to what can be brought to zero, jerk-limited,
            # before the speed limit (|v| + a²/2j ≤ v_max): Ruckig's velocity interface would carry it past.
            span = arm.cartesian
            vmax, amax, jmax = c.velocity_max[span], c.acceleration_max[span], c.jerk_max[span]
            v_new = np.clip(c.v[span], -vmax, vmax)
            a_new = np.clip(c.a[span], -amax, amax)
            room = np.sqrt(2.0 * jmax * (vmax - np.abs(v_new)))
            raising = a_new * v_new > 0.0
            a_new[raising] = np.clip(a_new[raising], -room[raising], room[raising])
            c.v[span], c.a[span] = v_new, a_new

    def brake(self) -> None:
        """No plan to follow (halted, holding): the Cartesian command stops too."""
        c = self.cartesian
        c.p[self.rotation_axes] = 0.0
        if not c.stopped():
            c.step(c.p.copy(), np.zeros(c.n), np.ones(c.n, dtype=bool))
            for arm in self.arms:
                arm.quat = turned(arm.quat, c.p[arm.rot])
            c.p[self.rotation_axes] = 0.0
