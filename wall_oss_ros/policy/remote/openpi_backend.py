"""A policy on another machine, over openpi's websocket protocol: the backend the policy node uses when the
GPU is elsewhere (our `wall-oss-ros serve`, or any server that reads our request keys).

One connection, one request at a time. A failure of any kind — no server, a timeout, a server error (a
text frame with its traceback, then close 1011), a malformed or wrong-shaped response — raises
RemotePolicyError with what happened and yields no chunk, so the executor halts on its chunk timeout as
for a dead local policy. The next call reconnects, at most once per backoff interval (doubling to
`backoff_max_s`), so a server that is down is not hammered.
"""

from __future__ import annotations

import contextlib
import threading
import time

from wall_oss_ros.core.contract import RobotContract
from wall_oss_ros.policy.backend import ChunkResult, Observation, RtcRequest
from wall_oss_ros.policy.remote import openpi_codec
from wall_oss_ros.policy.remote.openpi_messages import parse_response, request_message


class RemotePolicyError(RuntimeError):
    """The remote policy gave no chunk; the text says why."""


class OpenpiBackend:
    def __init__(self, uri: str, contract: RobotContract, api_key: str | None = None, timeout_s: float = 5.0,
                 connect_timeout_s: float = 5.0, backoff_s: float = 0.5, backoff_max_s: float = 10.0) -> None:
        """uri: ws://host:port (our server's default port is 8000); timeout_s: the longest a reply may take."""
        if not uri.startswith(("ws://", "wss://")):
            raise ValueError(f"server URI must start with ws:// or wss://, got {uri!r}")
        if not (timeout_s > 0 and connect_timeout_s > 0 and 0 < backoff_s <= backoff_max_s):
            raise ValueError("timeouts and backoff must be positive (backoff_s <= backoff_max_s)")
        self.uri, self.contract, self.dt_s = uri, contract, contract.dt_s
        self.horizon = 0  # from the server's metadata once connected
        self.metadata: dict = {}
        self.round_trip_s = float("nan")  # the last request's, for diagnostics
        self._api_key, self._timeout_s, self._connect_timeout_s = api_key, timeout_s, connect_timeout_s
        self._backoff_s, self._backoff_max_s = backoff_s, backoff_max_s
        self._next_backoff_s = backoff_s
        self._retry_at = 0.0
        self._ws = None
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- connection
    def _connect(self) -> None:
        import websockets.sync.client

        wait = self._retry_at - time.monotonic()
        if wait > 0:
            raise RemotePolicyError(f"{self.uri}: not connected; next attempt in {wait:.1f} s")
        headers = {"Authorization": f"Api-Key {self._api_key}"} if self._api_key else None
        try:
            ws = websockets.sync.client.connect(self.uri, compression=None, max_size=openpi_codec.MAX_FRAME_BYTES,
                                                additional_headers=headers, open_timeout=self._connect_timeout_s,
                                                proxy=None, legacy=True)  # a connection, not an iterator
            metadata = openpi_codec.unpackb(ws.recv(timeout=self._connect_timeout_s))
        except Exception as exc:  # refused, unreachable, handshake refused (401), no metadata frame, bad frame
            self._retry_at = time.monotonic() + self._next_backoff_s
            self._next_backoff_s = min(2.0 * self._next_backoff_s, self._backoff_max_s)
            raise RemotePolicyError(f"{self.uri}: cannot connect ({type(exc).__name__}: {exc})") from exc
        self._ws, self._next_backoff_s = ws, self._backoff_s
        self.metadata = metadata if isinstance(metadata, dict) else {}
        horizon = self.metadata.get("horizon")
        self.horizon = int(horizon) if isinstance(horizon, int) and horizon > 0 else self.horizon

    def _drop(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):  # already broken: nothing more to do with it
                ws.close()

    def close(self) -> None:
        with self._lock:
            self._drop()

    # ---------------------------------------------------------------- backend protocol
    def warmup(self) -> None:
        """Connect (and so learn the server's horizon); RemotePolicyError when the server is not there."""
        with self._lock:
            if self._ws is None:
                self._connect()

    def infer(self, observation: Observation, rtc: RtcRequest | None = None) -> ChunkResult:
        from websockets.exceptions import ConnectionClosed

        with self._lock:
            if self._ws is None:
                self._connect()
            start, wall = time.monotonic(), time.time()
            try:
                self._ws.send(openpi_codec.packb(request_message(observation, rtc)))
                reply = self._ws.recv(timeout=self._timeout_s)
            except TimeoutError as exc:
                self._drop()
                raise RemotePolicyError(f"{self.uri}: no reply within {self._timeout_s} s") from exc
            except ConnectionClosed as exc:
                self._drop()
                raise RemotePolicyError(f"{self.uri}: connection closed ({exc})") from exc
            self.round_trip_s = time.monotonic() - start
            if isinstance(reply, str):  # openpi: the server's traceback, then close 1011
                self._drop()
                raise RemotePolicyError(f"{self.uri}: server error: {reply.strip().splitlines()[-1:]}")
            try:
                result = parse_response(openpi_codec.unpackb(reply), self.contract.action_names, wall,
                                        wall + self.round_trip_s, self.dt_s)
            except openpi_codec.ProtocolError as exc:
                self._drop()
                raise RemotePolicyError(f"{self.uri}: bad response: {exc}") from exc
            self.horizon = self.horizon or len(result.actions)
            return result
