"""Checks that this machine can run the suite: ROS client library, messages, DDS profile, torch."""

from __future__ import annotations

import importlib
import os
import platform
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path

from wall_oss_ros.ros.dds import PROFILE_ENV


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True


def _check_rclpy() -> Check:
    try:
        rclpy = importlib.import_module("rclpy")
        from rclpy.utilities import get_rmw_implementation_identifier

        return Check("rclpy", True, f"{Path(rclpy.__file__).parent} (rmw {get_rmw_implementation_identifier()})")
    except Exception as exc:
        return Check("rclpy", False, f"not importable: {exc}")


def _check_messages() -> Check:
    try:
        from wall_oss_ros.msg import ActionChunk, ExecutorStatus

        fields = len(ActionChunk.get_fields_and_field_types()) + len(ExecutorStatus.get_fields_and_field_types())
        return Check("messages", True, f"ActionChunk, ExecutorStatus ({fields} fields)")
    except Exception as exc:
        return Check("messages", False, f"wall_oss_ros.msg not importable ({exc}); run 'make setup' or colcon build")


def describe_profile(path: str) -> tuple[bool, str]:
    """Whether a Fast DDS profile file is readable, and what transports it sets up."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        return False, f"{path}: unreadable ({exc})"
    ns = {"d": "http://www.eprosima.com"}
    builtin = root.findtext(".//d:participant/d:rtps/d:useBuiltinTransports", namespaces=ns)
    kinds = [t.text for t in root.findall(".//d:transport_descriptor/d:type", ns)]
    loopback = builtin == "false" and bool(root.findall(".//d:interface[@name='127.0.0.1']", ns))
    scope = "loopback-only discovery" if loopback else "network discovery"
    return True, f"{path}: {scope}, transports {'+'.join(k or '?' for k in kinds) or 'builtin'}"


def _check_dds_profile() -> Check:
    path = os.environ.get(PROFILE_ENV)
    if not path:
        return Check("dds profile", False, f"{PROFILE_ENV} is not set: Fast DDS defaults drop camera frames")
    ok, detail = describe_profile(path)
    return Check("dds profile", ok, detail)


def _check_module(name: str, required: bool) -> Check:
    try:
        module = importlib.import_module(name)
    except Exception as exc:
        return Check(name, False, f"not importable: {exc}", required)
    detail = getattr(module, "__version__", "installed")
    if name == "torch":
        cuda = module.cuda.is_available()
        detail += f", CUDA {'available: ' + module.cuda.get_device_name(0) if cuda else 'not available (CPU)'}"
    return Check(name, True, detail, required)


def run_checks() -> list[Check]:
    checks = [
        Check("python", True, f"{platform.python_implementation()} {platform.python_version()}"),
        _check_rclpy(),
        _check_messages(),
        _check_dds_profile(),
    ]
    checks += [_check_module(name, required=False) for name in ("torch", "transformers", "mujoco", "ruckig")]
    return checks


def as_dicts(checks: list[Check]) -> list[dict[str, object]]:
    return [asdict(c) for c in checks]
