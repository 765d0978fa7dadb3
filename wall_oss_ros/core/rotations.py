"""Rotation conversions (scipy Rotation) and the 6-D representation used by WALL-OSS.

6-D layout: the first two rows of the rotation matrix, row-major (r00 r01 r02 r10 r11 r12), as the
WALL-X data pipeline writes it; decoding orthonormalises the two rows with Gram-Schmidt.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial.transform import Rotation

ROT6D_EPS = 1e-6  # rows shorter than this, or parallel, carry no orientation


def rot6d_to_matrix(r6: np.ndarray) -> np.ndarray:
    """(..., 6) → (..., 3, 3). Raises ValueError for degenerate input (zero or parallel rows)."""
    r6 = np.asarray(r6, dtype=float)
    a1, a2 = r6[..., 0:3], r6[..., 3:6]
    n1 = np.linalg.norm(a1, axis=-1, keepdims=True)
    if not np.all(np.isfinite(r6)) or np.any(n1 < ROT6D_EPS):
        raise ValueError("6-D rotation has a non-finite or zero first row")
    b1 = a1 / n1
    b2 = a2 - np.sum(b1 * a2, axis=-1, keepdims=True) * b1
    n2 = np.linalg.norm(b2, axis=-1, keepdims=True)
    if np.any(n2 < ROT6D_EPS):
        raise ValueError("6-D rotation rows are parallel or the second row is zero")
    b2 = b2 / n2
    return np.stack([b1, b2, np.cross(b1, b2)], axis=-2)


def matrix_to_rot6d(matrix: np.ndarray) -> np.ndarray:
    """(..., 3, 3) → (..., 6): the first two rows."""
    matrix = np.asarray(matrix, dtype=float)
    return matrix[..., :2, :].reshape(*matrix.shape[:-2], 6)


def rot6d_to_quat(r6: np.ndarray) -> np.ndarray:
    """(..., 6) → (..., 4) quaternion (x, y, z, w)."""
    return Rotation.from_matrix(rot6d_to_matrix(r6)).as_quat()


def quat_to_rot6d(quat: np.ndarray) -> np.ndarray:
    """(..., 4) quaternion (x, y, z, w) → (..., 6)."""
    return matrix_to_rot6d(Rotation.from_quat(quat).as_matrix())


def rotvec_to_rot6d(rotvec: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle (rotation vector, rad) → (..., 6)."""
    return matrix_to_rot6d(Rotation.from_rotvec(rotvec).as_matrix())


def rot6d_to_rotvec(r6: np.ndarray) -> np.ndarray:
    """(..., 6) → (..., 3) axis-angle (rotation vector, rad)."""
    return Rotation.from_matrix(rot6d_to_matrix(r6)).as_rotvec()


def compose_relative(observed: np.ndarray, delta: np.ndarray, frame: str) -> np.ndarray:
    """Absolute rotation matrices from the observed one and relative ones.

    frame "base": R = dR · R_obs (the delta is expressed in the base frame, as WALL-X composes);
    frame "tool": R = R_obs · dR (the delta is expressed in the end-effector frame).
    """
    if frame == "base":
        return np.matmul(delta, observed)
    if frame == "tool":
        return np.matmul(observed, delta)
    raise ValueError(f"unknown rotation frame {frame!r}")


def continuous_quaternions(quats: np.ndarray, previous: np.ndarray | None = None) -> np.ndarray:
    """Flip quaternion signs so consecutive ones (and the first vs `previous`) have dot product ≥ 0.

    q and -q are the same rotation; a controller interpolating between them would spin the long way.
    """
    quats = np.array(quats, dtype=float, copy=True)
    ref = previous
    for i in range(len(quats)):
        if ref is not None and float(np.dot(quats[i], ref)) < 0.0:
            quats[i] = -quats[i]
        ref = quats[i]
    return quats


# ---------------------------------------------------------------- single rotations in the control tick
# scipy's Rotation takes ~100-160 µs per call here (array-API dispatch) against a 200 µs tick budget, so
# the executor's per-tick conversions of one rotation use these closed forms; tests check them against
# scipy for random rotations.

_SMALL = 1e-8  # rad: below this, first-order expansions are exact to double precision


def rot6d_to_matrix_one(r6: np.ndarray) -> np.ndarray:
    """rot6d_to_matrix for a single 6-vector (same result, same ValueError on degenerate input)."""
    a0, a1, a2, b0, b1, b2 = r6.tolist() if isinstance(r6, np.ndarray) else r6
    n1 = math.sqrt(a0 * a0 + a1 * a1 + a2 * a2)
    if not math.isfinite(n1 + b0 + b1 + b2) or n1 < ROT6D_EPS:
        raise ValueError("6-D rotation has a non-finite or zero first row")
    a0, a1, a2 = a0 / n1, a1 / n1, a2 / n1
    d = a0 * b0 + a1 * b1 + a2 * b2
    b0, b1, b2 = b0 - d * a0, b1 - d * a1, b2 - d * a2
    n2 = math.sqrt(b0 * b0 + b1 * b1 + b2 * b2)
    if n2 < ROT6D_EPS:
        raise ValueError("6-D rotation rows are parallel or the second row is zero")
    b0, b1, b2 = b0 / n2, b1 / n2, b2 / n2
    return np.array([[a0, a1, a2], [b0, b1, b2],
                     [a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0]])


def rotvec_to_quat_one(rotvec: np.ndarray) -> np.ndarray:
    """Quaternion (x, y, z, w) of one rotation vector."""
    x, y, z = rotvec.tolist() if isinstance(rotvec, np.ndarray) else rotvec
    angle = math.sqrt(x * x + y * y + z * z)
    scale = 0.5 - angle * angle / 48.0 if angle < 1e-4 else math.sin(angle / 2.0) / angle
    return np.array([x * scale, y * scale, z * scale, math.cos(angle / 2.0)])


def quat_multiply(q: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Hamilton product q ⊗ r, (x, y, z, w): the rotation r followed by q, in matrix terms R_q · R_r."""
    x1, y1, z1, w1 = q.tolist() if isinstance(q, np.ndarray) else q
    x2, y2, z2, w2 = r.tolist() if isinstance(r, np.ndarray) else r
    return np.array([w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                     w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
                     w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
                     w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2])


def quat_to_matrix_one(q: np.ndarray) -> np.ndarray:
    """Rotation matrix of one quaternion (x, y, z, w), normalised first."""
    x, y, z, w = q.tolist() if isinstance(q, np.ndarray) else q
    n = math.sqrt(x * x + y * y + z * z + w * w)
    x, y, z, w = x / n, y / n, z / n, w / n
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def matrix_to_quat_one(m: np.ndarray) -> np.ndarray:
    """Quaternion (x, y, z, w) of one rotation matrix (Shepperd's method: the stable branch per input)."""
    (m00, m01, m02), (m10, m11, m12), (m20, m21, m22) = m.tolist()
    trace = m00 + m11 + m22
    if trace > 0:
        s = 2.0 * math.sqrt(trace + 1.0)
        q = ((m21 - m12) / s, (m02 - m20) / s, (m10 - m01) / s, 0.25 * s)
    elif m00 > m11 and m00 > m22:
        s = 2.0 * math.sqrt(1.0 + m00 - m11 - m22)
        q = (0.25 * s, (m01 + m10) / s, (m02 + m20) / s, (m21 - m12) / s)
    elif m11 > m22:
        s = 2.0 * math.sqrt(1.0 + m11 - m00 - m22)
        q = ((m01 + m10) / s, 0.25 * s, (m12 + m21) / s, (m02 - m20) / s)
    else:
        s = 2.0 * math.sqrt(1.0 + m22 - m00 - m11)
        q = ((m02 + m20) / s, (m12 + m21) / s, 0.25 * s, (m10 - m01) / s)
    return np.array(q)


def quat_to_rotvec_one(q: np.ndarray) -> np.ndarray:
    """Rotation vector of one quaternion (x, y, z, w), the short way round (angle ≤ π)."""
    x, y, z, w = q.tolist() if isinstance(q, np.ndarray) else q
    if w < 0:
        x, y, z, w = -x, -y, -z, -w
    s = math.sqrt(x * x + y * y + z * z)
    scale = 2.0 / w if s < _SMALL else 2.0 * math.atan2(s, w) / s
    return np.array([x * scale, y * scale, z * scale])


def tool_step_to(quat: np.ndarray, r6d: np.ndarray) -> np.ndarray:
    """Rotation vector, in the tool frame, from the orientation quat (x, y, z, w) to the 6-D goal: the
    target of an EE group's rotation axes (zero, hold, for a degenerate goal)."""
    try:
        goal = matrix_to_quat_one(rot6d_to_matrix_one(r6d))
    except ValueError:
        return np.zeros(3)
    x, y, z, w = quat.tolist()
    return quat_to_rotvec_one(quat_multiply((-x, -y, -z, w), goal))


def turned(quat: np.ndarray, rotvec: np.ndarray) -> np.ndarray:
    """R ← R · exp(step): the orientation quat (x, y, z, w) after a rotation vector in its tool frame."""
    q = quat_multiply(quat, rotvec_to_quat_one(rotvec))
    return q / math.sqrt(float(q @ q))
