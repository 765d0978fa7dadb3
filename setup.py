"""pip distribution of the wall_oss_ros Python package, for use outside a colcon workspace.

The messages (wall_oss_ros.msg) come from the colcon build of this same directory; this distribution
carries the hand-written modules and the console scripts named in cmake/executables.txt.
"""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent


def console_scripts() -> list[str]:
    """Entry points from cmake/executables.txt, the list CMakeLists.txt installs for `ros2 run`."""
    lines = (HERE / "cmake" / "executables.txt").read_text().splitlines()
    entries = [line.split() for line in lines if line.strip() and not line.startswith("#")]
    return [f"{name} = {target}" for name, target in entries]


setup(
    name="wall_oss_ros",
    version="0.1.0",
    description="ROS 2 deployment of the WALL-OSS vision-language-action model",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["wall_oss_ros", "wall_oss_ros.*"]),
    install_requires=[
        "numpy>=1.24",
        "scipy>=1.10",
        "pyyaml>=6",
        "opencv-python-headless>=4.8",
        "ruckig>=0.12",
        "pin>=2.7",
        # Arm IK (core/inverse_kinematics.py): its QP solved by daqp; daqp.solve(H, f, A, bupper, blower)
        # with simple bounds first, and its exit flags, as in the tested range.
        "daqp>=0.5,<0.12",
        # Remote inference (policy/remote/): openpi's framing over websockets' sync client and asyncio server
        # (websockets 13+: recv(timeout=), process_request(connection, request)); msgpack for the codec.
        "websockets>=13,<18",
        "msgpack>=1.0.5,<2",
        "rosbags>=0.10",
        "matplotlib>=3.7",
        "rich>=13",
        "tqdm>=4.60",
    ],
    extras_require={
        # Any torch build the machine already has is accepted (a GPU workstation keeps its CUDA torch).
        # The model subclasses transformers' Qwen2.5-VL internals (decoder layer, attention's cache keyword,
        # rope index, DynamicCache): only the tested range. make setup installs the exact versions of
        # requirements/constraints.txt; the policy tests also pass with transformers 5.17.0.
        "policy": [
            "torch>=2.4",
            "torchvision>=0.19",
            "pillow>=10",
            "transformers>=5.17,<5.25",
            "safetensors>=0.4,<0.9",
            "tokenizers>=0.23,<0.24",
        ],
        # example-robot-data: the TIAGo++ URDF (two 7-DoF arms, torso, head, base) of the mobile robot.
        "sim": ["mujoco>=3.1", "gym-aloha>=0.1.1", "example-robot-data>=4.1"],
        # mcap-ros2-support: bags written by another tool than ours in the tests (its own CDR encoder).
        # msgpack-numpy: the reference the wall-x codec is tested against (its decoder is never used).
        "dev": ["pytest>=8", "hypothesis>=6.100", "ruff>=0.6", "psutil>=5.9", "mcap-ros2-support>=0.5,<0.7",
                "msgpack-numpy>=0.4.8,<0.5"],
    },
    entry_points={"console_scripts": console_scripts()},
)
