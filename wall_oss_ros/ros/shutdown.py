"""Spinning until a signal stops the process: the one place that tells a shutdown from a failure."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

import rclpy
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException
from rclpy.impl.implementation_singleton import rclpy_implementation

RCLError: type[Exception] = rclpy_implementation.RCLError


@contextlib.contextmanager
def until_shutdown(context: Context | None = None) -> Iterator[None]:
    """Let SIGINT/SIGTERM end the block quietly; let every other failure through.

    rclpy's signal handler shuts the context down from its own thread, so an executor can be caught
    between its context check and its next rcl call, which then raises RCLError ("the given context is
    not valid") instead of ExternalShutdownException. Seen in CI: the test robot died with that
    traceback and never wrote its recording. An RCLError while the context is still valid is a real
    failure and propagates."""
    try:
        yield
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RCLError:
        if rclpy.ok(context=context):
            raise


def ignore_further_signals() -> None:
    """Once a process is stopping, a second Ctrl-C (or launch's escalation to SIGTERM) must not interrupt
    its clean-up: a KeyboardInterrupt there leaves worker threads inside torch and files half written,
    and the process aborts. Call it from the main thread before the clean-up."""
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
