"""Test session set-up: the project's DDS environment and a ROS domain of this run's own."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

from wall_oss_ros.ros.dds import ros_environment

# `make test` draws the same examples on every run, so a result is reproducible and CI never fails by
# chance; `make fuzz` explores new ones (and many more of them).
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("WALL_OSS_ROS_HYPOTHESIS_PROFILE", "repeatable"))

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


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A tiny random WALL-OSS checkpoint, written once per test session by the project's generator."""
    from wall_oss_ros.tools.make_tiny_checkpoint import write

    return write(tmp_path_factory.mktemp("ckpt") / "transformers", "transformers", "aloha_bimanual", seed=0)


@pytest.fixture(scope="session")
def tiny_checkpoint_05(tmp_path_factory):
    """A tiny random WALL-OSS-0.5 checkpoint (x-square-robot layout), written once per test session."""
    from wall_oss_ros.tools.make_tiny_checkpoint_05 import write

    return write(tmp_path_factory.mktemp("ckpt_05") / "x-square", "x-square", "aloha_bimanual", seed=0)
