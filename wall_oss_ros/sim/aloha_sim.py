"""gym-aloha's bimanual ViperX scene, stepped by joint targets and rendered on demand.

gym-aloha's own `step()` renders three 640×480 cameras every 20 ms, which alone is slower than real time
on a CPU; this wrapper uses its physics, task (gripper normalisation, reset randomisation, reward) and
model, steps the physics at any multiple of its 2 ms timestep and renders only the top camera, only
when asked.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

TASKS = {"AlohaInsertion-v0": "bimanual_viperx_insertion.xml",
         "AlohaTransferCube-v0": "bimanual_viperx_transfer_cube.xml"}
# What to tell the policy for each task when the user gives no instruction (the demo, the sim launch).
TASK_INSTRUCTIONS = {"AlohaInsertion-v0": "insert the peg into the socket",
                     "AlohaTransferCube-v0": "pick up the cube with the right arm and transfer it to the left arm"}
ARM_JOINTS = ("waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate")
# The 14 joints in gym-aloha's action order; the grippers are normalised (0 closed, 1 open).
JOINT_NAMES = tuple(f"vx300s_{side}/{j}" for side in ("left", "right") for j in (*ARM_JOINTS, "gripper"))
MAX_REWARD = 4  # gym-aloha: the task is solved at this reward


class AlohaSim:
    joint_names = JOINT_NAMES

    def __init__(self, task: str = "AlohaInsertion-v0", seed: int = 0, width: int = 640, height: int = 480,
                 shadows: bool = True) -> None:
        if task not in TASKS:
            raise ValueError(f"task {task!r}: one of {sorted(TASKS)}")
        import gym_aloha  # noqa: F401 - registers the environments
        import gymnasium as gym
        import mujoco
        from gym_aloha.constants import ASSETS_DIR

        self._mujoco = mujoco
        self.task_name = task
        self.model_path = Path(ASSETS_DIR) / TASKS[task]
        from gym_aloha.tasks.sim import BOX_POSE
        from gym_aloha.utils import sample_box_pose, sample_insertion_pose

        self._env = gym.make(f"gym_aloha/{task}")
        control_env = self._env.unwrapped._env
        self.physics, self.task = control_env.physics, control_env.task
        # gym-aloha's reset, without the three-camera observation it renders (through a GL context that
        # dm_control cannot free cleanly at exit): place the objects for this seed, then the arms.
        BOX_POSE[0] = (np.concatenate(sample_insertion_pose(seed)) if task == "AlohaInsertion-v0"
                       else sample_box_pose(seed))
        with self.physics.reset_context():
            self.task.initialize_episode(self.physics)
        self.timestep_s = float(self.physics.model.opt.timestep)
        self._renderer = mujoco.Renderer(self.physics.model.ptr, height, width)
        self._shadows = shadows
        self.reward = 0.0

    @property
    def time_s(self) -> float:
        return float(self.physics.data.time)

    def joint_positions(self) -> np.ndarray:
        return np.asarray(self.task.get_qpos(self.physics), dtype=float)

    def joint_velocities(self) -> np.ndarray:
        return np.asarray(self.task.get_qvel(self.physics), dtype=float)

    def step(self, targets: np.ndarray, duration_s: float) -> None:
        """Hold the 14 joint targets (gym-aloha action layout) for duration_s of physics."""
        substeps = max(1, round(duration_s / self.timestep_s))
        self.task.before_step(np.asarray(targets, dtype=float), self.physics)
        self.physics.step(substeps)
        self.reward = float(self.task.get_reward(self.physics))

    def render(self, camera: str = "top") -> np.ndarray:
        """RGB (H, W, 3) uint8. Shadows and reflections off cost a third of the time on a CPU rasteriser."""
        r, flags = self._renderer, self._mujoco.mjtRndFlag
        r.update_scene(self.physics.data.ptr, camera=camera)
        r.scene.flags[flags.mjRND_SHADOW] = self._shadows
        r.scene.flags[flags.mjRND_REFLECTION] = self._shadows
        return r.render()

    def close(self) -> None:
        self._renderer.close()
        self._env.close()
