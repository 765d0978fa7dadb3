"""Launch files: loaded with the launch API where it is installed; otherwise everything they reference is checked."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

from test.support.ros_process import REPO_ROOT
from wall_oss_ros.ros import bag_replay, executor_node, policy_node, sim_node

LAUNCH_FILES = sorted((REPO_ROOT / "launch").glob("*.launch.py"))
NODE_PARAMS = {"executor_node": {p.name for p in executor_node.PARAMS},
               "policy_node": {p.name for p in policy_node.PARAMS},
               "sim_node": {p.name for p in sim_node.PARAMS},
               "bag_replay": {p.name for p in bag_replay.PARAMS}}
EXTERNAL = {"rviz2"}


def declared_executables() -> set[str]:
    lines = (REPO_ROOT / "cmake" / "executables.txt").read_text().splitlines()
    return {line.split()[0] for line in lines if line.strip() and not line.startswith("#")}


def test_launch_files_exist():
    assert {p.name for p in LAUNCH_FILES} >= {"robot_bimanual.launch.py", "mobile_manipulator.launch.py",
                                              "sim_aloha.launch.py", "replay.launch.py"}


@pytest.mark.skipif(importlib.util.find_spec("launch_ros") is None, reason="launch_ros is not installable from pip")
@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_description_loads(path):
    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.generate_launch_description().entities


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_each_launch_file_names_a_shipped_contract(path):
    calls = [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Call) and
             getattr(n.func, "id", "") == "robot_launch_description"]
    assert len(calls) == 1, f"{path.name} builds its description with robot_launch_description()"
    assert (REPO_ROOT / "config" / "robots" / f"{calls[0].args[0].value}.yaml").is_file()


def test_everything_the_launch_description_references_exists():
    path = REPO_ROOT / "wall_oss_ros" / "ros" / "launch_graph.py"
    tree = ast.parse(path.read_text())
    declared_args = {k.value for n in ast.walk(tree) if isinstance(n, ast.Assign) and
                     getattr(n.targets[0], "id", "") in ("ARGUMENTS", "SIM_ARGUMENTS", "REPLAY_ARGUMENTS")
                     for k in n.value.keys}
    nodes = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") in
             ("Node", "LifecycleNode")]
    assert nodes
    for call in nodes:
        kw = {k.arg: k.value for k in call.keywords}
        executable = kw["executable"].value
        if executable in EXTERNAL:
            continue
        assert kw["package"].value == "wall_oss_ros"
        assert executable in declared_executables(), f"{executable} is not installed"
        for d in ast.walk(kw["parameters"]):
            if isinstance(d, ast.Dict):
                for key in d.keys:
                    if isinstance(key, ast.Constant):
                        assert key.value in NODE_PARAMS[executable] | {"use_sim_time"}, \
                            f"{executable} has no parameter {key.value}"
    used = {n.slice.value for n in ast.walk(tree) if isinstance(n, ast.Subscript) and
            getattr(n.value, "id", "") == "arg" and isinstance(n.slice, ast.Constant)}
    assert used <= declared_args, f"undeclared arguments {used - declared_args}"
    for call in ast.walk(tree):  # os.path.join(share, "config", ...) files ship with the package
        if isinstance(call, ast.Call) and getattr(call.func, "attr", "") == "join":
            parts = [a.value for a in call.args if isinstance(a, ast.Constant)]
            if parts and parts[0] == "config":
                assert (REPO_ROOT / Path(*parts)).is_file(), f"{'/'.join(parts)} missing"


@pytest.mark.parametrize("graph", sorted((REPO_ROOT / "config" / "graphs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_bringup_graphs_name_real_executables_and_parameters(graph):
    from wall_oss_ros.tools.bringup import parse_graph

    specs, _ = parse_graph(graph)
    for spec in specs:
        unknown = set(spec.parameters) - NODE_PARAMS[spec.executable] - {"use_sim_time"}
        assert not unknown, f"{graph.name}: {spec.executable} has no parameters {unknown}"
