"""Test session set-up: the project's DDS environment and a ROS domain of this run's own."""

from __future__ import annotations

import os

import pytest

from wall_oss_ros.ros.dds import ros_environment

# One domain per test session so parallel runs on one machine never hear each other. Set before any
# participant exists: Fast DDS reads the profile when the first one is created.
DOMAIN_ID = int(os.environ.get("WALL_OSS_ROS_TEST_DOMAIN", 100 + os.getpid() % 100))
os.environ.update(ros_environment(domain_id=DOMAIN_ID))


def pytest_configure(config: pytest.Config) -> None:
    try:
        import wall_oss_ros.msg  # noqa: F401
    except ImportError as exc:
        raise pytest.UsageError(f"wall_oss_ros.msg is not importable ({exc}): run the tests with `make test`, "
                                "or `. scripts/env.sh` first") from exc


@pytest.fixture(scope="session")
def domain_id() -> int:
    return DOMAIN_ID


@pytest.fixture
def ros_node():
    """A node in a context of its own, shut down after the test."""
    import rclpy
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context)
    node = rclpy.create_node("pytest_probe", context=context)
    yield node
    node.destroy_node()
    context.try_shutdown()
