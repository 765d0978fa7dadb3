"""Joint positions for an arm's end-effector pose target: differential IK as a small QP per step (pinocchio's
Jacobian and pose error, solved by daqp) with the arm's joint limits as bounds of the step and a posture
term, so a redundant arm does not drift in its null space; and MoveIt Servo's singularity rule (slow down,
then stop, as the Jacobian's condition number rises; moving away from a singularity is allowed further).

The QP is formed here rather than through pink: pink assembles its tasks and limits in Python on every
step, ten times the cost of the QP itself (benchmarks/bench_ik.py), and two arms per 10 ms tick need it cheap.

An arm is a reduced model: the URDF's other joints (the other arm, fingers, wheels, torso) are locked at
reference positions. Each call starts from the last command (warm start) and runs at most `max_iterations`
QP steps; what it returns is finite and within the joint limits whatever the target. An unreachable target
leaves the arm as close as the limits allow, and the status says so.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

KINEMATICS_CACHE = 8  # configurations whose kinematics an ArmIk remembers


class IkStatus(enum.Enum):
    REACHED = "reached"  # within the tolerances
    APPROACHING = "approaching"  # closer than before, not yet within tolerance after the iterations
    UNREACHABLE = "unreachable"  # no progress: a joint limit, the reach of the arm
    INVALID_TARGET = "invalid target"  # non-finite target or start: the arm holds its last valid command


class SingularityStatus(enum.Enum):
    CLEAR = "clear"
    DECELERATE_APPROACHING = "decelerating, approaching a singularity"
    DECELERATE_LEAVING = "decelerating, leaving a singularity"
    HALT = "halted at a singularity"


@dataclass(frozen=True)
class IkConfig:
    max_iterations: int = 4  # QP steps per call (per control tick)
    position_tolerance_m: float = 1e-4
    orientation_tolerance_rad: float = 1e-3
    orientation_cost: float = 0.5  # relative to the position cost of 1 [m per rad]
    posture_cost: float = 1e-5  # pull toward the reference posture; small, or it competes with the pose (soft costs)
    damping: float = 1e-6  # damping of the step (bounded steps near singularities)
    progress_ratio: float = 0.999  # an iteration that keeps more of the error than this made no progress
    # MoveIt Servo's defaults: decelerate above 17, stop at 30; while leaving, the span is this many times wider.
    singularity_decelerate_condition: float = 17.0
    singularity_stop_condition: float = 30.0
    leaving_singularity_multiplier: float = 2.0


@dataclass(frozen=True)
class IkResult:
    q: np.ndarray  # the arm's joint positions, the group's joint order
    status: IkStatus
    position_error_m: float
    orientation_error_rad: float
    iterations: int


def singularity_scale(condition: float, moving_toward: bool, config: IkConfig) -> tuple[float, SingularityStatus]:
    """MoveIt Servo's speed scale for a Jacobian condition number: 1 up to the decelerate threshold, falling
    linearly to 0 at the stop threshold when moving toward the singularity (over a span `multiplier` times
    wider when leaving it); 0 at or past the stop threshold either way."""
    lower, stop = config.singularity_decelerate_condition, config.singularity_stop_condition
    if not condition < stop:  # NaN and inf too
        return 0.0, SingularityStatus.HALT
    if condition <= lower:
        return 1.0, SingularityStatus.CLEAR
    upper = stop if moving_toward else lower + (stop - lower) * config.leaving_singularity_multiplier
    status = SingularityStatus.DECELERATE_APPROACHING if moving_toward else SingularityStatus.DECELERATE_LEAVING
    return 1.0 - (condition - lower) / (upper - lower), status


class ArmIk:
    """IK of one arm of a URDF: `joints` (the group's, in its order) move the `tip` frame; poses are in the
    `base` frame. reference: positions of the model's other joints (name → value), default neutral.
    bounds: (lower, upper) joint positions to stay within, default the URDF's limits."""

    def __init__(self, urdf: str, joints: tuple[str, ...], base: str, tip: str,
                 reference: dict[str, float] | None = None, config: IkConfig | None = None,
                 bounds: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        import daqp
        import pinocchio as pin

        self._pin, self._daqp, self.config = pin, daqp, config or IkConfig()
        full = pin.buildModelFromUrdf(urdf)
        missing = [j for j in joints if not full.existJointName(j)]
        if missing or not full.existFrame(tip) or not full.existFrame(base):
            raise ValueError(f"{urdf}: unknown joints {missing}, or frames {base!r} / {tip!r}")
        q_ref = pin.neutral(full)
        for name, value in (reference or {}).items():
            if full.existJointName(name):
                q_ref[full.joints[full.getJointId(name)].idx_q] = value
        keep = {full.getJointId(j) for j in joints}
        lock = [i for i in range(1, full.njoints) if i not in keep]
        self.model = pin.buildReducedModel(full, lock, q_ref)
        self.data = self.model.createData()
        if self.model.nq != len(joints) or self.model.nv != len(joints):
            raise ValueError(f"{urdf}: the joints {joints} must each be one revolute or prismatic joint")
        self.index = np.array([self.model.joints[self.model.getJointId(j)].idx_q for j in joints])
        self.lower = self.model.lowerPositionLimit[self.index].copy()
        self.upper = self.model.upperPositionLimit[self.index].copy()
        if bounds is not None:
            self.lower = np.maximum(self.lower, np.asarray(bounds[0], dtype=float))
            self.upper = np.minimum(self.upper, np.asarray(bounds[1], dtype=float))
        if not np.all(self.lower < self.upper):
            raise ValueError(f"{urdf}: the joint bounds of {joints} leave no room ({self.lower} / {self.upper})")
        self.tip, self.base = self.model.getFrameId(tip), self.model.getFrameId(base)
        n = len(joints)
        cfg = self.config
        self._weights = np.array([1.0] * 3 + [cfg.orientation_cost ** 2] * 3)  # squared residual costs
        self._posture_weight = cfg.posture_cost ** 2  # costs weigh residuals, as pink's do
        self._regular = (cfg.damping + self._posture_weight) * np.eye(n)
        self._identity = np.eye(n)
        self._no_rows = np.zeros((0, n))
        self._target = pin.SE3.Identity()
        self.set_posture(np.zeros(n))
        # The base frame is upstream of the arm, every other joint locked: its placement never changes.
        pin.framesForwardKinematics(self.model, self.data, self.posture)
        self._world_base = self.data.oMf[self.base].copy()
        self._base_rotation_t = np.array(self._world_base.rotation).T
        self._world_base_translation = np.array(self._world_base.translation)
        self._cache: dict[bytes, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}

    # ------------------------------------------------------------------ conversions
    def _from_group(self, q: np.ndarray) -> np.ndarray:
        out = np.zeros(self.model.nq)
        out[self.index] = q
        return out

    def set_posture(self, q: np.ndarray) -> None:
        """The posture the null-space term pulls toward (group order), e.g. the robot's start pose."""
        self.posture = self._from_group(np.clip(np.asarray(q, dtype=float), self.lower, self.upper))

    # ------------------------------------------------------------------ kinematics
    def _at(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(tip position, tip rotation, Jacobian in the base frame's orientation, tool Jacobian) at q, from
        one pinocchio call, remembered for the last few configurations: a tick asks for the same joint
        command's kinematics in several places (the Cartesian state taken back, the next tick's singularity
        scale and catch-up limit, the tip-speed and singularity checks of its stop)."""
        key = np.asarray(q, dtype=float).tobytes()
        found = self._cache.get(key)
        if found is not None:
            return found
        pin = self._pin
        jac = pin.computeFrameJacobian(self.model, self.data, self._from_group(q), self.tip,
                                       pin.ReferenceFrame.LOCAL_WORLD_ALIGNED)[:, self.index]
        world_tip = self.data.oMf[self.tip]
        rot_b = self._base_rotation_t
        linear = rot_b @ jac[:3]
        found = (rot_b @ (np.array(world_tip.translation) - self._world_base_translation), rot_b @ world_tip.rotation,
                 np.vstack([linear, rot_b @ jac[3:]]), np.vstack([linear, world_tip.rotation.T @ jac[3:]]))
        if len(self._cache) >= KINEMATICS_CACHE:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = found
        return found

    def forward(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(position [m], rotation 3×3) of the tip in the base frame."""
        position, rotation, _, _ = self._at(q)
        return position.copy(), rotation.copy()

    def jacobian(self, q: np.ndarray) -> np.ndarray:
        """The tip's 6×n Jacobian (linear; angular) in the base frame's orientation."""
        return self._at(q)[2].copy()

    def tool_jacobian(self, q: np.ndarray) -> np.ndarray:
        """6×n: joint rates to the tip's linear velocity in the base frame and angular velocity in the tip
        frame (the Cartesian limiter's axes)."""
        return self._at(q)[3].copy()

    def singularity(self, q: np.ndarray, twist: np.ndarray) -> tuple[float, SingularityStatus, float]:
        """(speed scale, status, condition number) for a commanded tip twist (6, base frame) at q.

        As MoveIt Servo decides it: the least responsive output direction (last left singular vector), its
        sign fixed by a small step along it (the condition number must grow), against the twist."""
        u, s, vt = np.linalg.svd(self.jacobian(q), full_matrices=False)
        condition = float(s[0] / s[-1]) if s[-1] > 0 else float("inf")
        if not np.isfinite(condition):
            return 0.0, SingularityStatus.HALT, condition
        if condition <= self.config.singularity_decelerate_condition:  # clear either way: no direction needed
            return 1.0, SingularityStatus.CLEAR, condition
        toward = u[:, -1]
        step = vt.T @ ((u.T @ (toward / 100.0)) / s)  # the pseudo-inverse's joint step for it
        s_next = np.linalg.svd(self.jacobian(np.asarray(q, dtype=float) + step), compute_uv=False)
        if s_next[0] / s_next[-1] <= condition:
            toward = -toward
        scale, status = singularity_scale(condition, float(toward @ np.asarray(twist, dtype=float)) > 0, self.config)
        return scale, status, condition

    # ------------------------------------------------------------------ solve
    def _errors(self, q: np.ndarray) -> tuple[float, float]:
        """(position [m], angle [rad]) from the tip at q to the target."""
        pin = self._pin
        pin.framesForwardKinematics(self.model, self.data, self._from_group(q))
        tip, target = self.data.oMf[self.tip], self._target
        angle = float(np.linalg.norm(pin.log3(target.rotation @ tip.rotation.T)))
        return float(np.linalg.norm(target.translation - tip.translation)), angle

    def _cost(self, error: tuple[float, float]) -> float:
        return error[0] + self.config.orientation_cost * error[1]

    def condition(self, q: np.ndarray) -> float:
        """Condition number of the tip Jacobian at q (inf where it is singular)."""
        s = np.linalg.svd(self.jacobian(q), compute_uv=False)
        return float(s[0] / s[-1]) if s[-1] > 0 else float("inf")

    def _step(self, q: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray | None:
        """One QP step toward the target from q, within the joint bounds; None if the QP fails.

        min ½‖J·dq − e‖²_W + ½(λ + ‖e‖²_W + w²)‖dq‖² − w²·(posture − q)·dq  s.t.  lower − q ≤ dq ≤ upper − q,
        with e the tip's pose error (log of current⁻¹ · target) and J its Jacobian, both in the tip frame."""
        pin, model, data = self._pin, self.model, self.data
        q_model = self._from_group(q)
        pin.computeJointJacobians(model, data, q_model)
        pin.updateFramePlacements(model, data)
        jac = pin.getFrameJacobian(model, data, self.tip, pin.ReferenceFrame.LOCAL)[:, self.index]
        error = pin.log6(data.oMf[self.tip].actInv(self._target)).vector
        weighted = jac.T * self._weights
        # Damping grows with the squared error (Sugihara's rule): full Gauss-Newton steps near the target,
        # short gradient-like ones toward a far or unreachable target, which would otherwise overshoot.
        hessian = weighted @ jac + self._regular + float(error @ (self._weights * error)) * self._identity
        linear = -(weighted @ error) - self._posture_weight * (self.posture - q_model)[self.index]
        step, _, flag, _ = self._daqp.solve(hessian, linear, self._no_rows, upper - q, lower - q)
        if flag < 1:  # infeasible or failed
            return None
        candidate = np.clip(q + np.asarray(step), lower, upper)
        return candidate if np.all(np.isfinite(candidate)) else None

    def solve(self, q_start: np.ndarray, position: np.ndarray, rotation: np.ndarray,
              min_iterations: int = 0, reach: tuple[np.ndarray, np.ndarray] | None = None) -> IkResult:
        """Joint positions that bring the tip to (position, rotation) in the base frame, from q_start.

        min_iterations 1: step even when already within the tolerances (a moving target followed tick by
        tick: the answer then moves every tick, instead of in jumps of the tolerance). reach: (most down,
        most up) each joint may move from q_start in this call, e.g. what it can do in one control tick."""
        q = np.clip(np.asarray(q_start, dtype=float), self.lower, self.upper)
        position, rotation = np.asarray(position, dtype=float), np.asarray(rotation, dtype=float)
        if not (np.all(np.isfinite(q)) and np.all(np.isfinite(position)) and np.all(np.isfinite(rotation))):
            held = np.where(np.isfinite(q), q, np.clip(0.0, self.lower, self.upper))
            return IkResult(held, IkStatus.INVALID_TARGET, float("nan"), float("nan"), 0)
        pin, cfg = self._pin, self.config
        if np.abs(rotation.T @ rotation - np.eye(3)).max() > 1e-9 or np.linalg.det(rotation) < 0:
            u, _, vt = np.linalg.svd(rotation)
            rotation = u @ np.diag([1.0, 1.0, np.linalg.det(u @ vt)]) @ vt  # the nearest rotation
        self._target = self._world_base * pin.SE3(rotation, position)
        lower, upper = self.lower, self.upper
        if reach is not None:
            lower = np.minimum(np.maximum(lower, q + reach[0]), q)
            upper = np.maximum(np.minimum(upper, q + reach[1]), q)
        error = self._errors(q)
        iterations, status = 0, None
        while status is None:
            within = error[0] <= cfg.position_tolerance_m and error[1] <= cfg.orientation_tolerance_rad
            if within and iterations >= min_iterations:
                status = IkStatus.REACHED
            elif iterations == cfg.max_iterations:
                status = IkStatus.APPROACHING
            else:
                candidate = self._step(q, lower, upper)
                new_error = self._errors(candidate) if candidate is not None else None
                if new_error is None or self._cost(new_error) >= self._cost(error):
                    # no step improves it: a joint limit, the arm's reach (or already exact)
                    status = IkStatus.REACHED if within else IkStatus.UNREACHABLE
                else:
                    stalled = self._cost(new_error) > cfg.progress_ratio * self._cost(error) and not within
                    q, error, iterations = candidate, new_error, iterations + 1
                    status = IkStatus.UNREACHABLE if stalled else None
        return IkResult(q, status, error[0], error[1], iterations)
