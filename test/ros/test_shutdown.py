"""A stop request ends a spinning process quietly, whatever rclpy exception it surfaces as; failures still fail."""

from __future__ import annotations

import signal

import pytest
import rclpy
from rclpy.clock import Clock
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException
from rclpy.timer import Timer

from test.support.ros_process import RosProcess
from wall_oss_ros.ros.shutdown import RCLError, until_shutdown


@pytest.fixture
def context():
    ctx = Context()
    rclpy.init(context=ctx)
    yield ctx
    ctx.try_shutdown()


def make_timer(ctx: Context) -> Timer:
    """What an executor does at the start of every wait with a timeout."""
    return Timer(None, None, 1_000_000, Clock(), context=ctx)


def test_the_error_of_an_executor_caught_by_a_shutdown_is_a_shutdown(context):
    make_timer(context).destroy()
    context.shutdown()
    with pytest.raises(RCLError, match="context is not valid"):  # the error CI saw, raised for real
        make_timer(context)
    with until_shutdown(context):
        make_timer(context)


def test_an_rcl_error_while_the_context_is_valid_propagates(context):
    with pytest.raises(RCLError), until_shutdown(context):
        raise RCLError("failed to create publisher")


@pytest.mark.parametrize("stop", [KeyboardInterrupt, ExternalShutdownException])
def test_stop_requests_end_the_block(context, stop):
    with until_shutdown(context):
        raise stop()


def test_other_failures_propagate_after_a_shutdown(context):
    context.shutdown()
    with pytest.raises(ValueError), until_shutdown(context):
        raise ValueError("bad parameter")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stopped_recorder_hands_over_its_recording(domain_id, tmp_path, sig):
    out = tmp_path / "commands.json"
    robot = RosProcess("fake_robot.py", "--duration-s", "60", "--out", str(out), domain_id=domain_id)
    try:
        robot.read_json_line(timeout_s=30)
        robot.popen.send_signal(sig)
        assert robot.wait(timeout_s=10) == 0, robot.stderr()
    finally:
        robot.stop()
    assert out.exists(), robot.stderr()
    assert "Traceback" not in robot.stderr()
