"""Call ROS services from a test node and wait for the answer."""

from __future__ import annotations

from rclpy.client import Client
from rclpy.node import Node

from test.support.spin import spin_until


class Services:
    """One client per service, kept for the test: a fresh client per call can lose its first answer
    while discovery still matches the reply path."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._clients: dict[str, Client] = {}

    def call(self, srv_type: type, name: str, request: object, timeout_s: float = 10.0) -> object:
        client = self._clients.get(name)
        if client is None:
            client = self._clients[name] = self.node.create_client(srv_type, name)
            assert spin_until(self.node, client.service_is_ready, timeout_s), f"service {name} not available"
            spin_until(self.node, lambda: False, 0.2)  # let the reply path match too
        future = client.call_async(request)
        assert spin_until(self.node, future.done, timeout_s), f"service {name} did not answer"
        return future.result()
