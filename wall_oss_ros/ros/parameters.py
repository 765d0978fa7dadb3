"""ROS parameters declared once, each with its default, unit (in the name) and description."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node


@dataclass(frozen=True)
class Param:
    name: str
    default: Any
    description: str
    any_type: bool = False  # a value that reads naturally as a number or a string (cpu_affinity:=3 or :="2-3")


def declare(node: Node, params: Sequence[Param]) -> dict[str, Any]:
    """Declare every parameter (once) and return their current values by name."""
    values = {}
    for p in params:
        if not node.has_parameter(p.name):
            node.declare_parameter(p.name, p.default, ParameterDescriptor(description=p.description,
                                                                          dynamic_typing=p.any_type))
        values[p.name] = node.get_parameter(p.name).value
    return values


def markdown_table(params: Sequence[Param]) -> str:
    """The parameters as a Markdown table (for the reference docs)."""
    rows = ["| name | default | description |", "|---|---|---|"]
    rows += [f"| `{p.name}` | `{p.default!r}` | {p.description.replace('|', '&#124;')} |" for p in params]
    return "\n".join(rows)
