"""`wall-oss-ros bringup GRAPH.yaml`: start the graph's nodes as separate processes, like a launch file.

`ros2 launch` is not installable in a pip environment, so this starts the same nodes from one YAML file,
each in its own process with the project's DDS environment, forwards SIGINT/SIGTERM to them, and
shuts everything down when one of them ends (exit 1 if it failed, 0 if it finished, as a replay does at
the bag's end) or when told to stop. Example:

    use_sim_time: false
    nodes:
      - executable: executor_node        # a name from cmake/executables.txt
        parameters: {contract: aloha_bimanual, autostart: true}
      - executable: policy_node
        parameters: {checkpoint: /data/wall-oss-flow, instruction: "insert the peg"}
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from wall_oss_ros.ros.dds import ros_environment

EXECUTABLES_FILE = Path(__file__).resolve().parents[2] / "cmake" / "executables.txt"
STOP_TIMEOUT_S = 10.0


class BringupError(ValueError):
    """The graph file is invalid; the message names the key."""


@dataclass(frozen=True)
class NodeSpec:
    executable: str
    module: str
    parameters: dict[str, object]
    activate: bool = True


def executables() -> dict[str, str]:
    """Executable name → module, from cmake/executables.txt (or the installed package's modules)."""
    known = {"executor_node": "wall_oss_ros.ros.executor_node", "policy_node": "wall_oss_ros.ros.policy_node"}
    if EXECUTABLES_FILE.is_file():
        for line in EXECUTABLES_FILE.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                name, target = line.split()
                known[name] = target.split(":")[0]
    return known


def parse_graph(path: Path) -> tuple[list[NodeSpec], bool]:
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise BringupError(f"{path}: cannot read ({exc})") from exc
    if not isinstance(doc.get("nodes"), list) or not doc["nodes"]:
        raise BringupError(f"{path}: nodes: expected a non-empty list")
    known = executables()
    specs = []
    for i, entry in enumerate(doc["nodes"]):
        if not isinstance(entry, dict) or entry.get("executable") not in known:
            raise BringupError(f"{path}: nodes[{i}].executable: one of {sorted(known)}")
        params = entry.get("parameters") or {}
        if not isinstance(params, dict):
            raise BringupError(f"{path}: nodes[{i}].parameters: expected a mapping")
        activate = bool(entry.get("activate", True))
        specs.append(NodeSpec(entry["executable"], known[entry["executable"]], params, activate))
    return specs, bool(doc.get("use_sim_time", False))


def _value(v: object) -> str:
    """A parameter value as `-p name:=value` wants it (YAML scalars; strings as they are)."""
    if isinstance(v, str):
        try:
            plain = v != "" and yaml.safe_load(v) == v
        except yaml.YAMLError:
            plain = False
        return v if plain else "'" + v.replace("'", "''") + "'"  # stays a string ("", "true", "1.5", …)
    return yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("...").strip()


def command(spec: NodeSpec, use_sim_time: bool) -> list[str]:
    args = [sys.executable, "-m", spec.module] + (["--activate"] if spec.activate else []) + ["--ros-args"]
    params = {"use_sim_time": use_sim_time, **spec.parameters}  # a node may override (the sim owns /clock)
    for key, value in params.items():
        args += ["-p", f"{key}:={_value(value)}"]
    return args


def run(path: Path) -> int:
    specs, use_sim_time = parse_graph(path)
    env = ros_environment()
    env["PYTHONUNBUFFERED"] = "1"
    children = [(spec, subprocess.Popen(command(spec, use_sim_time), env=env, start_new_session=True))
                for spec in specs]
    stopping = False

    def stop(signum: int = signal.SIGINT, frame: object = None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    print(f"bringup: started {', '.join(f'{s.executable} (pid {p.pid})' for s, p in children)}", flush=True)
    failed = finished = None
    while not stopping:
        for spec, proc in children:
            if proc.poll() is not None:
                if proc.returncode == 0:  # done (a replay at the bag's end, a sim at its duration): not a failure
                    finished = finished or spec.executable
                else:
                    failed = failed or f"{spec.executable} exited with code {proc.returncode}"
                stopping = True
        time.sleep(0.1)
    if failed:
        print(f"bringup: {failed}: stopping the graph", file=sys.stderr, flush=True)
    elif finished:
        print(f"bringup: {finished} finished: stopping the graph", flush=True)
    for _, proc in children:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for spec, proc in children:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"bringup: {spec.executable} did not stop in {STOP_TIMEOUT_S} s: killed", file=sys.stderr)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return 1 if failed else 0
