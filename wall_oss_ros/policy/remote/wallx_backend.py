"""A policy on a wall-x 1.1.0 server (`wall_x/_vendor/harrix/serving/launch_serving.py`): the backend the policy
node uses with `backend: wallx`, the schema of that server's fields read from a server schema file.

The wall-x server has no real-time chunking, no API key and no horizon in its metadata (the horizon is
learned from the first reply); a connection to a server whose metadata does not say `model: wall-x` is
refused, since every field would be misread. The connection itself is the shared websocket client's.
"""

from __future__ import annotations

from wall_oss_ros.core.contract import RobotContract
from wall_oss_ros.policy.backend import ChunkResult, Observation, RtcRequest
from wall_oss_ros.policy.remote import wallx_codec
from wall_oss_ros.policy.remote.wallx_messages import parse_response, request_message
from wall_oss_ros.policy.remote.wallx_schema import WallxSchema
from wall_oss_ros.policy.remote.websocket_client import RemotePolicyError, WebsocketPolicyClient

__all__ = ["RemotePolicyError", "WallxBackend"]


class WallxBackend(WebsocketPolicyClient):
    protocol = "wall-x"

    def __init__(self, uri: str, contract: RobotContract, schema: WallxSchema, timeout_s: float = 5.0,
                 connect_timeout_s: float = 5.0, backoff_s: float = 0.5, backoff_max_s: float = 10.0) -> None:
        """uri: ws://host:port (the wall-x server's default port is 43007); timeout_s: the longest a reply may
        take [s]."""
        super().__init__(uri, contract, wallx_codec.packb, wallx_codec.unpackb, None, timeout_s,
                         connect_timeout_s, backoff_s, backoff_max_s)
        self.schema = schema

    def check_metadata(self, metadata: dict) -> None:
        if metadata.get("model") != "wall-x":
            raise RemotePolicyError(f"{self.uri} is not a wall-x server (its metadata: {str(metadata)[:200]}); "
                                    "an openpi server, such as wall-oss-ros serve, needs backend openpi")

    def infer(self, observation: Observation, rtc: RtcRequest | None = None) -> ChunkResult:
        if rtc is not None:
            raise ValueError("the wall-x server has no real-time chunking: run the policy node with rtc off")

        def parse(reply: object, start_s: float, end_s: float) -> ChunkResult:
            return parse_response(reply, observation, self.contract, self.schema, start_s, end_s)

        return self.round_trip(request_message(observation, self.contract, self.schema), parse)
