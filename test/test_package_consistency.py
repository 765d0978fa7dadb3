"""What the package declares (executables, messages, manifest) exists and resolves."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import re
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from catkin_pkg.package import parse_package

from test.support.ros_process import REPO_ROOT

INSTALL = REPO_ROOT / "install" / "wall_oss_ros"


def declared_executables() -> dict[str, str]:
    lines = (REPO_ROOT / "cmake" / "executables.txt").read_text().splitlines()
    entries = [line.split() for line in lines if line.strip() and not line.startswith("#")]
    assert all(len(e) == 2 for e in entries), f"malformed cmake/executables.txt entries: {entries}"
    return dict(entries)


def test_executables_declared():
    assert declared_executables(), "cmake/executables.txt lists at least one executable"


@pytest.mark.parametrize(("name", "target"), sorted(declared_executables().items()))
def test_executable_resolves_to_a_main(name, target):
    module_name, function = target.split(":")
    assert function == "main", f"{name}: entry function is {function}, expected main"
    module = importlib.import_module(module_name)
    assert callable(getattr(module, function, None)), f"{name}: {module_name} has no callable {function}"


@pytest.mark.parametrize(("name", "target"), sorted(declared_executables().items()))
def test_colcon_installed_the_ros2_run_launcher(name, target):
    launcher = INSTALL / "lib" / "wall_oss_ros" / name
    assert launcher.is_file(), f"{launcher} missing: colcon did not install `ros2 run wall_oss_ros {name}`"
    assert launcher.stat().st_mode & stat.S_IXUSR, f"{launcher} is not executable"
    module_name, function = target.split(":")
    assert f"from {module_name} import {function}" in launcher.read_text()


@pytest.mark.parametrize(("name", "target"), sorted(declared_executables().items()))
def test_pip_console_script_matches(name, target):
    # The pip distribution in the venv (colcon's install tree holds an egg-info of the same name).
    dists = importlib.metadata.distributions(name="wall_oss_ros", path=[sysconfig.get_paths()["purelib"]])
    scripts = {ep.name: ep.value for d in dists for ep in d.entry_points if ep.group == "console_scripts"}
    assert scripts.get(name) == target, f"console script {name} is {scripts.get(name)}, declared {target}"


def test_console_script_runs():
    out = subprocess.run(["wall-oss-ros", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "doctor" in out.stdout


def msg_files() -> list[Path]:
    return sorted((REPO_ROOT / "msg").glob("*.msg"))


def test_every_msg_file_is_generated_and_listed():
    cmake = (REPO_ROOT / "CMakeLists.txt").read_text()
    listed = set(re.findall(r'"msg/(\w+)\.msg"', cmake))
    assert listed == {p.stem for p in msg_files()}, "CMakeLists.txt rosidl_generate_interfaces() lists every msg/*.msg"
    msg_module = importlib.import_module("wall_oss_ros.msg")
    for path in msg_files():
        msg_type = getattr(msg_module, path.stem)
        fields = msg_type.get_fields_and_field_types()
        declared = [m.group(2) for line in path.read_text().splitlines()
                    if (m := re.match(r"^\s*([\w/\[\]<=>]+)\s+([a-z]\w*)\s*(#.*)?$", line))]
        assert list(fields) == declared, f"{path.name}: generated fields differ from the file"


def test_package_manifest_is_valid():
    package = parse_package(str(REPO_ROOT / "package.xml"))
    package.validate()
    assert package.package_format == 3
    project = re.search(r"project\((\w+)", (REPO_ROOT / "CMakeLists.txt").read_text()).group(1)
    assert package.name == project == "wall_oss_ros"
    names = {d.name for d in package.exec_depends + package.build_depends + package.buildtool_depends}
    required = {"rclpy", "sensor_msgs", "std_msgs", "geometry_msgs", "trajectory_msgs", "visualization_msgs",
                "diagnostic_msgs", "std_srvs", "builtin_interfaces", "rosidl_default_generators",
                "rosidl_default_runtime", "python3-numpy", "python3-scipy", "python3-opencv"}
    assert required <= names, f"package.xml lacks {sorted(required - names)}"
    assert "rosidl_interface_packages" in [g.name for g in package.member_of_groups]


def test_installed_share_holds_config_and_launch():
    share = INSTALL / "share" / "wall_oss_ros"
    sources = [p for d in ("config", "launch") for p in (REPO_ROOT / d).rglob("*") if p.is_file()]
    assert REPO_ROOT / "config" / "dds" / "fastdds_loopback.xml" in sources
    missing = [str(p.relative_to(REPO_ROOT)) for p in sources if not (share / p.relative_to(REPO_ROOT)).is_file()]
    assert missing == [], f"not installed to share/wall_oss_ros: {missing}"


def test_env_script_gives_a_shell_with_messages_and_profile():
    set_by_env_sh = ("PYTHONPATH", "LD_LIBRARY_PATH", "FASTDDS_DEFAULT_PROFILES_FILE", "_ROS_WHEELS_BOOTSTRAP_COMPLETE")
    env = {k: v for k, v in os.environ.items() if k not in set_by_env_sh}
    env["PATH"] = "/usr/bin:/bin"
    script = ('. scripts/env.sh && python -c "from wall_oss_ros.msg import ActionChunk; import os; '
              "print(os.environ['FASTDDS_DEFAULT_PROFILES_FILE'])\"")
    out = subprocess.run(["bash", "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()) == REPO_ROOT / "config" / "dds" / "fastdds_loopback.xml"
    assert sys.executable  # the venv interpreter ran the tests too


def test_every_action_file_is_generated_listed_and_agrees_with_the_core():
    """action/*.action: built by colcon like the messages, its fields as the file says, and RunPolicy's
    result constants the ones core.run_goal ends goals with."""
    from wall_oss_ros.core import run_goal

    cmake = (REPO_ROOT / "CMakeLists.txt").read_text()
    files = sorted((REPO_ROOT / "action").glob("*.action"))
    assert set(re.findall(r'"action/(\w+)\.action"', cmake)) == {p.stem for p in files}
    module = importlib.import_module("wall_oss_ros.action")
    for path in files:
        parts = path.read_text().split("\n---\n")
        assert len(parts) == 3, f"{path.name}: goal, result and feedback"
        for part, kind in zip(parts, ("Goal", "Result", "Feedback"), strict=True):
            fields = getattr(getattr(module, path.stem), kind).get_fields_and_field_types()
            declared = [m.group(2) for line in part.splitlines()
                        if (m := re.match(r"^\s*([\w/\[\]<=>]+)\s+([a-z]\w*)\s*(#.*)?$", line))]
            assert list(fields) == declared, f"{path.name} {kind}: generated fields differ from the file"
    result = module.RunPolicy.Result
    for name in ("END_DURATION", "END_CANCELED", "END_PREEMPTED", "END_FAULT", "END_ESTOP", "END_SHUTDOWN"):
        assert getattr(result, name) == getattr(run_goal, name), name
