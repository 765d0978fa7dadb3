"""Security rules that hold for the whole code base, and nodes that refuse invalid parameters at start."""

from __future__ import annotations

import ast
import re

import pytest

from test.support.ros_process import REPO_ROOT, node_process

SOURCES = sorted(p for d in ("wall_oss_ros", "benchmarks", "test", "scripts", "launch")
                 for p in (REPO_ROOT / d).rglob("*.py"))


def calls(tree: ast.AST, dotted: str) -> list[ast.Call]:
    module, _, name = dotted.rpartition(".")
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
            and n.func.attr == name and getattr(n.func.value, "id", "") == module]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_no_pickle_and_only_safe_loaders(path):
    source = path.read_text()
    tree = ast.parse(source)
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not imported & {"pickle", "cPickle", "dill", "cloudpickle", "marshal", "shelve", "joblib"}
    for call in calls(tree, "torch.load"):
        kw = {k.arg: k.value for k in call.keywords}
        assert getattr(kw.get("weights_only"), "value", None) is True, f"{path}:{call.lineno} torch.load unsafe"
    for call in calls(tree, "np.load"):
        kw = {k.arg: k.value for k in call.keywords}
        assert getattr(kw.get("allow_pickle"), "value", False) is False, f"{path}:{call.lineno}"
    assert not calls(tree, "yaml.load") and not calls(tree, "yaml.unsafe_load"), f"{path}: yaml.safe_load only"
    assert not re.search(r"\beval\(|\bexec\(", source.replace("model.eval()", "")), f"{path}: eval/exec"


@pytest.mark.ros
@pytest.mark.parametrize(("node", "params", "words"), [
    ("executor_node", {"control_hz": -5.0}, "control_hz"),
    ("executor_node", {"merge_strategy": "bogus"}, "bogus"),
    ("executor_node", {"contract": "/no/such/contract.yaml"}, "contract"),
    ("executor_node", {"jtc_mode": "sometimes"}, "jtc_mode"),
    ("executor_node", {"realtime_priority": 150}, "realtime_priority"),
    ("executor_node", {"cpu_affinity": "fast"}, "cpu_affinity"),
    ("executor_node", {"cpu_affinity": "4096"}, "not available"),
    ("policy_node", {"checkpoint": "/no/such/checkpoint"}, "checkpoint"),
    ("sim_node", {"step_s": 0.003}, "step_s"),
    ("sim_node", {"camera_hz": 0.0}, "camera_hz"),
])
def test_invalid_parameters_stop_a_node_at_start_with_the_reason(domain_id, node, params, words):
    process = node_process(node, domain_id, activate=node != "sim_node", **params)
    code = process.wait(timeout_s=60)
    assert code != 0, f"{node} started with {params}"
    assert words in process.stderr(), process.stderr()[-1500:]
