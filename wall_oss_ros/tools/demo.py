"""`wall-oss-ros demo`: the whole graph, closed loop, on a simulated robot: gym-aloha's bimanual ViperX
(joint space, the default) or TIAGo++ (26-D: end-effector arms through IK, base, torso, head).

sim_node + policy_node + executor_node start as separate processes (bringup, use_sim_time) with the
robot's contract; this process records the run into an mcap bag while showing progress in sim time, stops
the graph after `duration_s` of sim time, and writes `report.md`, PNG plots and `summary.json` from the
bag. Without a checkpoint a tiny random-weight one is generated: it exercises the pipeline, not the task.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from wall_oss_ros.core.contract import GroupKind
from wall_oss_ros.core.resources import config_path
from wall_oss_ros.ros.dds import ros_environment
from wall_oss_ros.sim.aloha_sim import TASK_INSTRUCTIONS

CONTRACTS = {"aloha": "aloha_bimanual", "tiago": "tiago_dual"}
TIAGO_INSTRUCTION = "pick up the red block"
MODELS = ("wall-oss-flow", "wall-oss-0.5")  # families of the generated tiny checkpoint
WALL_TIMEOUT_FACTOR = 20.0  # give up when sim time advances slower than 1/20 of real time
ALOHA_START_POSE = (0.0, -0.96, 1.16, 0.0, -0.3, 0.0)  # gym-aloha's arm start pose [rad]
ARM_SPREAD_RAD = 0.1  # [rad] half-range of the arm action statistics


EE_SPREAD = {"position_m": 0.03, "rotation_6d": 0.03}  # half-ranges of the relative EE action statistics
TIAGO_HOLD = {"base": (0.05, 0.1), "torso": 0.02, "head": 0.1}  # half-ranges: base (vx [m/s], wz [rad/s]), …


def demo_action_range(contract) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001 - RobotContract
    """Action statistics for the random model: ALOHA's arm joints ±ARM_SPREAD_RAD around gym-aloha's start
    pose; TIAGo++'s arms small relative end-effector moves (a few cm, near-identity rotations), its base
    slow, torso and head near their start; grippers over their whole range. Random weights then keep the
    arms moving above the table instead of driving them into it or each other (which the executor rightly
    stops as a tracking fault)."""
    from wall_oss_ros.sim.tiago_sim import HOME

    low, high = [], []
    for g in contract.groups:
        if g.kind is GroupKind.GRIPPER:
            low += [lim.position_min for lim in g.limits]
            high += [lim.position_max for lim in g.limits]
        elif g.kind is GroupKind.EE_POSE:
            centre = np.array([0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0])  # no move, identity rotation
            spread = np.array([EE_SPREAD["position_m"]] * 3 + [EE_SPREAD["rotation_6d"]] * 6)
            low += list(centre - spread)
            high += list(centre + spread)
        elif g.kind is GroupKind.BASE_TWIST:
            spread = [TIAGO_HOLD["base"][1] if a == "wz" else TIAGO_HOLD["base"][0] for a in g.axes]
            low += [-x for x in spread]
            high += spread
        elif contract.name == CONTRACTS["aloha"]:
            low += [q - ARM_SPREAD_RAD for q in ALOHA_START_POSE]
            high += [q + ARM_SPREAD_RAD for q in ALOHA_START_POSE]
        else:
            start = np.array([HOME.get(j, 0.0) for j in g.axes])
            spread = TIAGO_HOLD.get(g.name, 0.05)
            low += list(start - spread)
            high += list(start + spread)
    return np.array(low), np.array(high)


def graph(checkpoint: Path, task: str, device: str, camera_hz: float, shadows: bool, real_time_factor: float,
          robot: str = "aloha") -> dict:
    contract = CONTRACTS[robot]
    sim = {"use_sim_time": False, "robot": robot, "publish_compressed": True, "render_shadows": shadows,
           "camera_hz": camera_hz, "wait_for_camera_subscriber": True, "real_time_factor": real_time_factor}
    if robot == "aloha":
        sim["task"] = task
    else:  # three cameras: a smaller image keeps the CPU rasteriser's share of the machine moderate
        sim.update(camera_width=320, camera_height=240)
    return {"use_sim_time": True, "nodes": [
        {"executable": "sim_node", "parameters": sim},
        {"executable": "policy_node", "parameters": {
            "contract": contract, "checkpoint": str(checkpoint), "device": device,
            "instruction": TASK_INSTRUCTIONS[task] if robot == "aloha" else TIAGO_INSTRUCTION,
            "cpu_threads": max(1, (os.cpu_count() or 2) // 2)}},  # the other half: sim, executor, recorder
        {"executable": "executor_node", "parameters": {
            "contract": contract, "autostart": True, "frame_id": "world"}},
    ]}


def recorded_topics(contract) -> dict[str, str]:  # noqa: ANN001 - RobotContract
    """What `wall-oss-ros record` records for the contract (the cameras as the policy reads them, so the
    bag feeds the replay graph), plus ALOHA's JPEG twin for viewers and its task reward, or the base's
    odometry."""
    from wall_oss_ros.tools.bag_record import contract_topics

    extra = ({"/camera/top/image_raw/compressed": "sensor_msgs/msg/CompressedImage",
              "/sim_node/reward": "std_msgs/msg/Float64"} if contract.name == CONTRACTS["aloha"] else
             {"/mobile_base_controller/odom": "nav_msgs/msg/Odometry"})
    return {**contract_topics(contract), **extra}


def write_tiny(checkpoint: Path, model: str, contract) -> None:  # noqa: ANN001 - RobotContract
    """The demo's tiny checkpoint of the family, its action statistics narrowed around the start pose."""
    if model == MODELS[0]:
        from wall_oss_ros.tools.make_tiny_checkpoint import write

        write(checkpoint, "transformers", contract.name, 0, demo_action_range(contract))
    else:
        from wall_oss_ros.tools.make_tiny_checkpoint_05 import write as write_05

        write_05(checkpoint, "x-square", contract.name, 0, demo_action_range(contract))


def run_demo(out_dir: Path, checkpoint: Path | None, duration_s: float, task: str = "AlohaInsertion-v0",
             device: str = "", camera_hz: float = 15.0, shadows: bool = False, real_time_factor: float = 0.5,
             model: str = MODELS[0], robot: str = "aloha") -> int:
    """model: the family of the generated tiny checkpoint when none is given (a given one says its own);
    robot: aloha | tiago."""
    import rclpy
    from rclpy.parameter import Parameter
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rosgraph_msgs.msg import Clock

    from wall_oss_ros.core.contract import load_contract
    from wall_oss_ros.tools.bag_record import BagRecorder
    from wall_oss_ros.tools.run_report import write_report

    out_dir.mkdir(parents=True, exist_ok=True)
    if robot not in CONTRACTS:
        raise ValueError(f"robot must be one of {sorted(CONTRACTS)}, got {robot!r}")
    contract_file = config_path("robots", f"{CONTRACTS[robot]}.yaml")
    contract = load_contract(contract_file)
    tiny = checkpoint is None
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    if tiny:
        checkpoint = out_dir / (("tiny_checkpoint" if model == MODELS[0] else "tiny_checkpoint_05")
                                + ("" if robot == "aloha" else f"_{robot}"))
        if not (checkpoint / "config.json").is_file():
            print(f"generating a tiny random-weight {model} checkpoint in {checkpoint}")
            write_tiny(checkpoint, model, contract)
    graph_file = out_dir / "graph.yaml"
    spec = graph(checkpoint, task, device, camera_hz, shadows, real_time_factor, robot)
    graph_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    bag = out_dir / "run"  # a rosbag2 directory: run/metadata.yaml, run/run_0.mcap
    if bag.exists():
        shutil.rmtree(bag) if bag.is_dir() else bag.unlink()

    env = {**os.environ, **ros_environment(), "PYTHONUNBUFFERED": "1"}
    log = (out_dir / "graph.log").open("w")
    graph_proc = subprocess.Popen([sys.executable, "-m", "wall_oss_ros.tools.cli", "bringup", str(graph_file)],
                                  env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    os.environ.update(ros_environment())
    rclpy.init()
    node = rclpy.create_node("demo_recorder", parameter_overrides=[Parameter("use_sim_time", value=True)])
    recorder = BagRecorder(node, bag, recorded_topics(contract), reliable=(
        "/policy_node/action_chunk", "/executor_node/status", "/joint_states", "/sim_node/reward",
        *(g.output.topic for g in contract.groups)),
        contract_yaml=contract_file.read_text())
    sim_time = [0.0]
    node.create_subscription(Clock, "/clock", lambda m: sim_time.__setitem__(0, m.clock.sec + m.clock.nanosec * 1e-9),
                             10)
    failed = ""
    started = time.monotonic()
    timeout = 120.0 + WALL_TIMEOUT_FACTOR * duration_s
    columns = (TextColumn("[bold]demo"), BarColumn(), TextColumn("{task.completed:.1f}/{task.total:.0f} s sim time"),
               TextColumn("chunks {task.fields[chunks]}"), TimeElapsedColumn())
    try:
        with Progress(*columns) as progress:
            bar = progress.add_task("sim", total=duration_s, chunks=0)
            while sim_time[0] < duration_s:
                rclpy.spin_once(node, timeout_sec=0.05)
                progress.update(bar, completed=min(sim_time[0], duration_s),
                                chunks=recorder.counts["/policy_node/action_chunk"])
                if graph_proc.poll() is not None:
                    failed = f"the graph stopped (exit code {graph_proc.returncode}); see {out_dir / 'graph.log'}"
                    break
                if time.monotonic() - started > timeout:
                    failed = f"sim time reached only {sim_time[0]:.1f} s in {timeout:.0f} s of wall time"
                    break
    finally:
        recorder.close_with_provenance()  # while the graph's nodes still answer for their parameters
        if graph_proc.poll() is None:
            os.killpg(graph_proc.pid, signal.SIGINT)
            try:
                graph_proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(graph_proc.pid, signal.SIGKILL)
        node.destroy_node()
        rclpy.try_shutdown()
        log.close()
    if failed:
        print(f"demo failed: {failed}", file=sys.stderr)
        return 1
    wall = time.monotonic() - started
    scene = f"`{task}`" if robot == "aloha" else "TIAGo++ at a table"
    notes = (f"{duration_s:.0f} s of sim time of {scene} in {wall:.0f} s of wall time, closed loop: sim_node → "
             f"policy_node → executor_node → sim_node, each in its own process over DDS. "
             + (f"Checkpoint: a tiny **random-weight** {model} model generated offline; it exercises the pipeline "
                "(timing, safety, smoothness), not the task. " if tiny else f"Checkpoint: `{checkpoint}`. "))
    title = "gym-aloha" if robot == "aloha" else "TIAGo++"
    report = write_report(bag, contract, out_dir, f"wall_oss_ros demo: {title} closed loop", notes)
    print(f"report: {report}")
    return 0
