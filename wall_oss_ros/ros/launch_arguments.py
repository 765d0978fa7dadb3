"""Launch arguments: declared once with type and allowed values, checked before any node starts.

`ros2 launch` hands every argument over as a string and launch_ros parses parameter strings as YAML, so
`instruction:=yes` became a bool, `instruction:="put block #2 in the bin"` lost its comment-like tail and
`rate:=2` an integer for a double parameter — each crashing one node while the rest of the graph ran on.
Here the strings are validated and converted to the parameter's type (strings stay strings) by plain
Python, testable without the launch API; launch_graph builds the nodes only from the result, so a bad
argument stops the launch with every problem named and no process started.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from wall_oss_ros.core.contract import contract_file
from wall_oss_ros.core.plan_clock import check_speed_scale
from wall_oss_ros.sim.aloha_sim import TASK_INSTRUCTIONS

BOOLEANS = {"true": True, "false": False}
FRAME_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_/]*$")  # a tf2 frame name


class LaunchArgumentError(ValueError):
    """One or more launch arguments that cannot start the graph; the message names each."""


@dataclass(frozen=True)
class LaunchArg:
    name: str
    default: str
    kind: str  # str | bool | positive_float | speed_scale | choice | frame | contract | directory | file
    description: str
    choices: tuple[str, ...] = ()
    optional: bool = True  # directory / file kinds: empty is allowed


ROBOT = (
    LaunchArg("contract", "", "contract", "robot contract name (config/robots/) or YAML path"),
    LaunchArg("checkpoint", "", "directory", "WALL-OSS checkpoint directory", optional=False),
    LaunchArg("instruction", "", "str", "default task instruction (any text; the sim launch: the task's)"),
    LaunchArg("device", "", "str", "torch device for the policy (empty: cuda if available)"),
    LaunchArg("prediction_mode", "", "choice", "flow | fast; empty: the checkpoint's", ("", "flow", "fast")),
    LaunchArg("use_sim_time", "false", "bool", "run on /clock (simulation, bag replay)"),
    LaunchArg("autostart", "false", "bool", "execute chunks as soon as the executor is active (else call ~/start)"),
    LaunchArg("dry_run", "false", "bool", "compute and show plans, never command the controllers"),
    LaunchArg("speed_scale", "1.0", "speed_scale", "run the model's plans at this share of their speed, in (0, 1] "
              "(a low-speed first rollout; settable later with ros2 param set /executor_node speed_scale)"),
    LaunchArg("rviz", "false", "bool", "start RViz with config/rviz/wall_oss.rviz"),
    LaunchArg("frame_id", "base_link", "frame", "frame of the plan markers and stamped commands; RViz's fixed frame"),
    LaunchArg("dds_profile", "", "file", "Fast DDS profiles XML for every node (empty: the environment's "
              "FASTDDS_DEFAULT_PROFILES_FILE, else the middleware's default)"),
)
REPLAY = (
    LaunchArg("bag", "", "file", "rosbag2 to replay (directory or file)", optional=False),
    LaunchArg("rate", "1.0", "positive_float", "replay speed"),
    LaunchArg("loop", "false", "bool", "replay in a loop"),
)
SIM = (
    LaunchArg("task", "AlohaInsertion-v0", "choice", "gym-aloha task (ALOHA only)",
              ("AlohaInsertion-v0", "AlohaTransferCube-v0")),
    LaunchArg("real_time_factor", "1.0", "positive_float", "sim time per wall time (the sim publishes /clock)"),
    LaunchArg("render_shadows", "true", "bool", "render shadows (slower on a CPU)"),
)
SIM_ROBOTS = {"aloha_bimanual": "aloha", "tiago_dual": "tiago"}  # contract → the sim_node robot it drives
TIAGO_INSTRUCTION = "pick up the red block"  # the TIAGo++ scene's default instruction
TIAGO_CAMERA = {"camera_width": 320, "camera_height": 240, "publish_compressed": True}  # its contract reads JPEG


def declared(default_contract: str, with_sim: bool = False, with_replay: bool = False) -> tuple[LaunchArg, ...]:
    """The arguments of one launch file, with its defaults (sim and replay run on /clock)."""
    overrides = {"contract": default_contract}
    if with_sim or with_replay:
        overrides["use_sim_time"] = "true"
    if with_replay:
        overrides["dry_run"] = "true"
    if with_sim:  # the frame the plan markers' tip paths are in: the MJCF's root, or TIAGo++'s arm mount
        overrides["frame_id"] = "torso_lift_link" if SIM_ROBOTS.get(default_contract) == "tiago" else "world"
    return tuple(LaunchArg(a.name, overrides.get(a.name, a.default), a.kind, a.description, a.choices, a.optional)
                 for a in ROBOT + (SIM if with_sim else ()) + (REPLAY if with_replay else ()))


def _convert(arg: LaunchArg, value: str) -> tuple[object, str | None]:
    if arg.kind == "bool":
        parsed = BOOLEANS.get(value.strip().lower())
        return parsed, None if parsed is not None else f"{arg.name}:={value!r} is not true or false"
    if arg.kind == "positive_float":
        try:
            number = float(value)
        except ValueError:
            return None, f"{arg.name}:={value!r} is not a number"
        return number, None if math.isfinite(number) and number > 0 else f"{arg.name}:={value!r} must be > 0"
    if arg.kind == "speed_scale":
        try:
            return check_speed_scale(float(value)), None
        except ValueError:
            return None, f"{arg.name}:={value!r} must be a number in (0, 1]"
    if arg.kind == "choice":
        return value, None if value in arg.choices else f"{arg.name}:={value!r} is not one of {list(arg.choices)}"
    if arg.kind == "frame":
        return value, None if FRAME_ID.match(value) else f"{arg.name}:={value!r} is not a frame name"
    if arg.kind == "contract":
        path = contract_file(value)
        return value, None if path.is_file() else f"{arg.name}:={value!r}: no contract at {path}"
    if arg.kind in ("directory", "file"):
        if not value:
            return value, None if arg.optional else f"{arg.name} is required"
        path = Path(value).expanduser()
        ok = path.is_dir() if arg.kind == "directory" else path.exists()
        return str(path), None if ok else f"{arg.name}:={value!r} does not exist"
    return value, None  # str: any text, kept as text


def typed_arguments(raw: Mapping[str, str], args: tuple[LaunchArg, ...]) -> dict[str, object]:
    """Every argument converted to its type; LaunchArgumentError lists all that are wrong."""
    typed, problems = {}, []
    for arg in args:
        value, problem = _convert(arg, str(raw.get(arg.name, arg.default)))
        typed[arg.name] = value
        if problem:
            problems.append(problem)
    if problems:
        raise LaunchArgumentError("launch arguments: " + "; ".join(problems))
    return typed


def node_parameters(typed: Mapping[str, object], with_sim: bool = False,
                    with_replay: bool = False) -> dict[str, dict[str, object]]:
    """Each node's parameters, typed, from validated arguments."""
    sim_time = {"use_sim_time": typed["use_sim_time"]}
    robot = SIM_ROBOTS.get(Path(str(typed["contract"])).stem, "aloha")
    default_instruction = (TASK_INSTRUCTIONS[str(typed["task"])] if robot == "aloha" else TIAGO_INSTRUCTION) \
        if with_sim else ""
    nodes = {
        "policy_node": {"contract": typed["contract"], "checkpoint": typed["checkpoint"],
                        "instruction": typed["instruction"] or default_instruction, "device": typed["device"],
                        "prediction_mode": typed["prediction_mode"], **sim_time},
        "executor_node": {"contract": typed["contract"], "autostart": typed["autostart"],
                          "dry_run": typed["dry_run"], "frame_id": typed["frame_id"],
                          "speed_scale": typed["speed_scale"], **sim_time},
    }
    if with_sim:
        # Sim time holds at 0 until the policy, its model loaded, subscribes to the camera (as in the demo):
        # the robot does not wait for chunks that cannot come yet.
        nodes["sim_node"] = {"robot": robot, "task": typed["task"], "real_time_factor": typed["real_time_factor"],
                             "render_shadows": typed["render_shadows"], "use_sim_time": False,
                             "wait_for_camera_subscriber": True, **(TIAGO_CAMERA if robot == "tiago" else {})}
    if with_replay:
        nodes["bag_replay"] = {"bag": typed["bag"], "rate": typed["rate"], "loop": typed["loop"],
                               "contract": typed["contract"],
                               "use_sim_time": False}
    return nodes
