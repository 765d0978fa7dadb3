"""The layering rules of the package: core/ is numpy/scipy only, policy/ and sim/ never touch ROS."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from test.support.ros_process import REPO_ROOT

PACKAGE = REPO_ROOT / "wall_oss_ros"
FORBIDDEN = {
    "core": {"rclpy", "torch", "transformers", "torchvision", "wall_oss_ros.ros", "wall_oss_ros.policy",
             "wall_oss_ros.msg", "wall_oss_ros.action"},
    "policy": {"rclpy", "wall_oss_ros.ros", "wall_oss_ros.msg", "wall_oss_ros.action"},
    "sim": {"rclpy", "torch", "transformers", "wall_oss_ros.ros", "wall_oss_ros.policy", "wall_oss_ros.msg",
            "wall_oss_ros.action"},
}


def imported_modules(path: Path) -> set[str]:
    """Every module an import statement names, including importlib.import_module("...") strings."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in
              ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant)):
            names.add(str(node.args[0].value))
    return names


def _violations(layer: str) -> list[str]:
    found = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for name in imported_modules(path):
            if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN[layer]):
                found.append(f"{path.relative_to(REPO_ROOT)} imports {name}")
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_nothing_forbidden(layer):
    assert _violations(layer) == []


def test_checker_sees_every_import_form(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import rclpy.node\nfrom torch import nn\nimport importlib\n"
                     "importlib.import_module('transformers')\n")
    assert imported_modules(probe) >= {"rclpy.node", "torch", "transformers"}


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_importing_a_layer_loads_nothing_forbidden(layer):
    """Transitive check: import every module of the layer in a fresh interpreter."""
    modules = sorted(
        ".".join(p.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in (PACKAGE / layer).rglob("*.py")
    )
    script = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    loaded = set(json.loads(out.stdout))
    bad = {m for m in loaded for f in FORBIDDEN[layer] if m == f or m.startswith(f + ".")}
    assert bad == set(), f"importing {layer}/ loads {sorted(bad)}"


def test_executor_side_never_loads_torch():
    """The executor may run on a robot computer without torch: its modules and messages stay torch-free."""
    script = ("import json, sys\nimport wall_oss_ros.core.executor, wall_oss_ros.ros.conversions\n"
              "print(json.dumps(sorted(sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    loaded = set(json.loads(out.stdout))
    assert not {m for m in loaded if m.split(".")[0] in ("torch", "transformers", "torchvision")}


NODES = ("executor_node", "policy_node", "sim_node", "bag_replay")


def test_no_node_imports_another_node():
    """Nodes share helpers through core/ or ros/ helper modules, never through each other."""
    found = []
    for node in NODES:
        for name in imported_modules(PACKAGE / "ros" / f"{node}.py"):
            others = [f"wall_oss_ros.ros.{other}" for other in NODES if other != node]
            if any(name == o or name.startswith(o + ".") for o in others):
                found.append(f"{node} imports {name}")
    assert found == []
