"""Rotation conversions (scipy Rotation) and the 6-D representation used by WALL-OSS.

6-D layout: the first two rows of the rotation matrix, row-major (r00 r01 r02 r10 r11 r12), as the
WALL-X data pipeline writes it; decoding orthonormalises the two rows with Gram-Schmidt.
"""

from __future__ import annotations

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
