"""`wall-oss-ros demo`: the whole graph, closed loop, on gym-aloha's simulated bimanual robot.

sim_node + policy_node + executor_node start as separate processes (bringup, use_sim_time) with the
ALOHA contract; this process records the run into an mcap bag while showing progress in sim time, stops
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

CONTRACT = "aloha_bimanual"
MODELS = ("wall-oss-flow", "wall-oss-0.5")  # families of the generated tiny checkpoint
WALL_TIMEOUT_FACTOR = 20.0  # give up when sim time advances slower than 1/20 of real time
ALOHA_START_POSE = (0.0, -0.96, 1.16, 0.0, -0.3, 0.0)  # gym-aloha's arm start pose [rad]
ARM_SPREAD_RAD = 0.1  # [rad] half-range of the arm action statistics


def demo_action_range(contract) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001 - RobotContract
    """Action statistics for the random model: arm joints ±ARM_SPREAD_RAD around gym-aloha's start pose,
    grippers over their whole range. Random weights then keep the arms moving above the table instead of
    driving them into it or each other (which the executor rightly stops as a tracking fault)."""
    low, high = [], []
    for g in contract.groups:
        if g.kind is GroupKind.GRIPPER:
            low += [lim.position_min for lim in g.limits]
            high += [lim.position_max for lim in g.limits]
        else:
            low += [q - ARM_SPREAD_RAD for q in ALOHA_START_POSE]
            high += [q + ARM_SPREAD_RAD for q in ALOHA_START_POSE]
    return np.array(low), np.array(high)


def graph(checkpoint: Path, task: str, device: str, camera_hz: float, shadows: bool, real_time_factor: float) -> dict:
    return {"use_sim_time": True, "nodes": [
        {"executable": "sim_node", "parameters": {
            "use_sim_time": False, "task": task, "publish_compressed": True, "render_shadows": shadows,
            "camera_hz": camera_hz, "wait_for_camera_subscriber": True, "real_time_factor": real_time_factor}},
        {"executable": "policy_node", "parameters": {
            "contract": CONTRACT, "checkpoint": str(checkpoint), "device": device,
            "instruction": TASK_INSTRUCTIONS[task],
            "cpu_threads": max(1, (os.cpu_count() or 2) // 2)}},  # the other half: sim, executor, recorder
        {"executable": "executor_node", "parameters": {
            "contract": CONTRACT, "autostart": True, "frame_id": "world"}},
    ]}


def recorded_topics(contract) -> dict[str, str]:  # noqa: ANN001 - RobotContract
    """What `wall-oss-ros record` records for the contract (the camera as the policy reads it, so the bag
    feeds the replay graph), plus the JPEG twin for viewers and the task's reward."""
    from wall_oss_ros.tools.bag_record import contract_topics

    return {**contract_topics(contract), "/camera/top/image_raw/compressed": "sensor_msgs/msg/CompressedImage",
            "/sim_node/reward": "std_msgs/msg/Float64"}


def write_tiny(checkpoint: Path, model: str, contract) -> None:  # noqa: ANN001 - RobotContract
    """The demo's tiny checkpoint of the family, its action statistics narrowed around the start pose."""
    if model == MODELS[0]:
        from wall_oss_ros.tools.make_tiny_checkpoint import write

        write(checkpoint, "transformers", CONTRACT, 0, demo_action_range(contract))
    else:
        from wall_oss_ros.tools.make_tiny_checkpoint_05 import write as write_05

        write_05(checkpoint, "x-square", CONTRACT, 0, demo_action_range(contract))


def run_demo(out_dir: Path, checkpoint: Path | None, duration_s: float, task: str = "AlohaInsertion-v0",
             device: str = "", camera_hz: float = 15.0, shadows: bool = False, real_time_factor: float = 0.5,
             model: str = MODELS[0]) -> int:
    """model: the family of the generated tiny checkpoint when none is given (a given one says its own)."""
    import rclpy
    from rclpy.parameter import Parameter
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rosgraph_msgs.msg import Clock

    from wall_oss_ros.core.contract import load_contract
    from wall_oss_ros.tools.bag_record import BagRecorder
    from wall_oss_ros.tools.run_report import write_report

    out_dir.mkdir(parents=True, exist_ok=True)
    contract = load_contract(config_path("robots", f"{CONTRACT}.yaml"))
    tiny = checkpoint is None
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    if tiny:
        checkpoint = out_dir / ("tiny_checkpoint" if model == MODELS[0] else "tiny_checkpoint_05")
        if not (checkpoint / "config.json").is_file():
            print(f"generating a tiny random-weight {model} checkpoint in {checkpoint}")
            write_tiny(checkpoint, model, contract)
    graph_file = out_dir / "graph.yaml"
    spec = graph(checkpoint, task, device, camera_hz, shadows, real_time_factor)
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
        contract_yaml=config_path("robots", f"{CONTRACT}.yaml").read_text())
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
        recorder.close()
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
    notes = (f"{duration_s:.0f} s of sim time of `{task}` in {wall:.0f} s of wall time, closed loop: sim_node → "
             f"policy_node → executor_node → sim_node, each in its own process over DDS. "
             + (f"Checkpoint: a tiny **random-weight** {model} model generated offline; it exercises the pipeline "
                "(timing, safety, smoothness), not the task. " if tiny else f"Checkpoint: `{checkpoint}`. "))
    report = write_report(bag, contract, out_dir, "wall_oss_ros demo: gym-aloha closed loop", notes)
    print(f"report: {report}")
    return 0
