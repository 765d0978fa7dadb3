"""Start helper scripts as separate ROS processes with the project's DDS environment."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from wall_oss_ros.ros.dds import ros_environment

SUPPORT_DIR = Path(__file__).resolve().parent
REPO_ROOT = SUPPORT_DIR.parents[1]


class RosProcess:
    """A child Python process running a helper script; stopped with SIGINT, then killed."""

    def __init__(self, script: str, *args: str, domain_id: int, netns: str | None = None,
                 env: dict[str, str] | None = None) -> None:
        """netns: run inside this network namespace (ip netns exec); env: variables to set on top (a DDS
        profile of the test's own)."""
        env = {**ros_environment(domain_id=domain_id), **(env or {})}
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
        prefix = ["ip", "netns", "exec", netns] if netns else []
        self.name = script
        self.popen = subprocess.Popen(
            [*prefix, sys.executable, str(SUPPORT_DIR / script), *args],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def read_json_line(self, timeout_s: float) -> dict:
        """Next stdout line, parsed as JSON; fails with the child's stderr if none comes in time."""
        deadline = time.monotonic() + timeout_s
        os.set_blocking(self.popen.stdout.fileno(), False)
        buffer = ""
        while time.monotonic() < deadline:
            chunk = self.popen.stdout.readline()
            if chunk:
                buffer += chunk
                if buffer.endswith("\n"):
                    return json.loads(buffer)
            elif self.popen.poll() is not None:
                break
            else:
                time.sleep(0.01)
        self.stop()
        raise AssertionError(f"no line from {self.name} within {timeout_s} s; stderr:\n{self.stderr()}")

    def wait(self, timeout_s: float) -> int:
        try:
            return self.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            self.stop()
            name = self.name
            raise AssertionError(f"{name} did not exit in {timeout_s} s; stderr:\n{self.stderr()}") from exc

    def stderr(self) -> str:
        """What the child wrote to stderr so far (never blocks on a running child)."""
        try:
            os.set_blocking(self.popen.stderr.fileno(), False)
            return self.popen.stderr.read() or ""
        except (ValueError, OSError, TypeError):
            return ""

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGINT)
            try:
                self.popen.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()

    def __enter__(self) -> RosProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def node_process(node: str, domain_id: int, activate: bool = True, netns: str | None = None,
                 env: dict[str, str] | None = None, **parameters: object) -> RosProcess:
    """One of the package's nodes (wall_oss_ros/ros/<node>.py) in its own process, with `-p name:=value` each."""
    args = (["--activate"] if activate else []) + ["--ros-args"]
    for name, value in parameters.items():
        args += ["-p", f"{name}:={str(value).lower() if isinstance(value, bool) else value}"]
    return RosProcess(f"../../wall_oss_ros/ros/{node}.py", *args, domain_id=domain_id, netns=netns, env=env)
