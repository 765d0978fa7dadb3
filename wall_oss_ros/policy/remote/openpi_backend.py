"""A policy on another machine over openpi's websocket protocol: the backend the policy node uses when the
GPU is elsewhere (our `wall-oss-ros serve`, or any server that reads our request keys).

The connection, its timeouts, backoff and failure handling are the shared websocket client's.
"""

from __future__ import annotations

from wall_oss_ros.core.contract import RobotContract
from wall_oss_ros.policy.backend import ChunkResult, Observation, RtcRequest
from wall_oss_ros.policy.remote import openpi_codec
from wall_oss_ros.policy.remote.openpi_messages import parse_response, request_message
from wall_oss_ros.policy.remote.websocket_client import RemotePolicyError, WebsocketPolicyClient

__all__ = ["OpenpiBackend", "RemotePolicyError"]


class OpenpiBackend(WebsocketPolicyClient):
    protocol = "openpi"

    def __init__(self, uri: str, contract: RobotContract, api_key: str | None = None, timeout_s: float = 5.0,
                 connect_timeout_s: float = 5.0, backoff_s: float = 0.5, backoff_max_s: float = 10.0) -> None:
        """uri: ws://host:port (our server's default port is 8000); timeout_s: the longest a reply may take."""
        super().__init__(uri, contract, openpi_codec.packb, openpi_codec.unpackb, api_key, timeout_s,
                         connect_timeout_s, backoff_s, backoff_max_s)

    def check_metadata(self, metadata: dict) -> None:
        if metadata.get("model") == "wall-x":
            raise RemotePolicyError(f"{self.uri} is a wall-x server (metadata {metadata}): use backend wallx "
                                    "with a server schema")

    def infer(self, observation: Observation, rtc: RtcRequest | None = None) -> ChunkResult:
        def parse(reply: object, start_s: float, end_s: float) -> ChunkResult:
            return parse_response(reply, self.contract.action_names, start_s, end_s, self.dt_s)

        return self.round_trip(request_message(observation, rtc), parse)
