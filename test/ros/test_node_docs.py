"""The nodes' parameter tables in docs/reference/nodes.md are the ones the code declares."""

from __future__ import annotations

from test.support.ros_process import REPO_ROOT
from wall_oss_ros.ros import bag_replay, executor_node, policy_node, sim_node
from wall_oss_ros.ros.parameters import markdown_table


def test_parameter_tables_match_the_declarations():
    doc = (REPO_ROOT / "docs" / "reference" / "nodes.md").read_text()
    for module in (executor_node, policy_node, sim_node, bag_replay):
        assert markdown_table(module.PARAMS) in doc, f"{module.__name__}: regenerate docs/reference/nodes.md"
