"""The connection a remote backend keeps to its policy server: one websocket, one request at a time.

openpi's server and wall-x's share this framing (the server's metadata frame first, then one binary reply
per binary request; an error is a text frame with the traceback, then close 1011) and differ in the array
codec and the keys, which a subclass supplies. A failure of any kind — no server, a timeout, a server
error, a malformed or wrong-shaped reply — raises RemotePolicyError with what happened and yields no
chunk, so the executor halts on its chunk timeout as for a dead local policy. The next call reconnects,
at most once per backoff interval (doubling to `backoff_max_s`), so a server that is down is not
hammered.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from wall_oss_ros.core.contract import RobotContract
from wall_oss_ros.policy.backend import ChunkResult
from wall_oss_ros.policy.remote.openpi_codec import MAX_FRAME_BYTES, ProtocolError


class RemotePolicyError(RuntimeError):
    """The remote policy gave no chunk; the text says why."""


class WebsocketPolicyClient:
    """Connection, timeouts, backoff and the round trip; the protocol's codec and checks come from below."""

    protocol = ""  # for messages: "openpi", "wall-x"

    def __init__(self, uri: str, contract: RobotContract, packb: Callable[[Any], bytes],
                 unpackb: Callable[[bytes], Any], api_key: str | None = None, timeout_s: float = 5.0,
                 connect_timeout_s: float = 5.0, backoff_s: float = 0.5, backoff_max_s: float = 10.0) -> None:
        """timeout_s: the longest a reply may take [s]; backoff_s: the first wait before reconnecting [s]."""
        if not uri.startswith(("ws://", "wss://")):
            raise ValueError(f"server URI must start with ws:// or wss://, got {uri!r}")
        if not (timeout_s > 0 and connect_timeout_s > 0 and 0 < backoff_s <= backoff_max_s):
            raise ValueError("timeouts and backoff must be positive (backoff_s <= backoff_max_s)")
        self.uri, self.contract, self.dt_s = uri, contract, contract.dt_s
        self.horizon = 0  # from the server's metadata, or from the first reply
        self.metadata: dict = {}
        self.round_trip_s = float("nan")  # the last request's, for diagnostics
        self._packb, self._unpackb = packb, unpackb
        self._api_key, self._timeout_s, self._connect_timeout_s = api_key, timeout_s, connect_timeout_s
        self._backoff_s, self._backoff_max_s = backoff_s, backoff_max_s
        self._next_backoff_s = backoff_s
        self._retry_at = 0.0
        self._ws = None
        self._lock = threading.Lock()

    def check_metadata(self, metadata: dict) -> None:
        """Raise RemotePolicyError for a server of another protocol (a subclass knows its server's marks)."""

    # ---------------------------------------------------------------- connection
    def _connect(self) -> None:
        import websockets.sync.client

        wait = self._retry_at - time.monotonic()
        if wait > 0:
            raise RemotePolicyError(f"{self.uri}: not connected; next attempt in {wait:.1f} s")
        headers = {"Authorization": f"Api-Key {self._api_key}"} if self._api_key else None
        try:
            ws = websockets.sync.client.connect(self.uri, compression=None, max_size=MAX_FRAME_BYTES,
                                                additional_headers=headers, open_timeout=self._connect_timeout_s,
                                                proxy=None, legacy=True)  # a connection, not an iterator
            metadata = self._unpackb(ws.recv(timeout=self._connect_timeout_s))
        except Exception as exc:  # refused, unreachable, handshake refused (401), no metadata frame, bad frame
            self._back_off()
            raise RemotePolicyError(f"{self.uri}: cannot connect ({type(exc).__name__}: {exc})") from exc
        metadata = metadata if isinstance(metadata, dict) else {}
        try:
            self.check_metadata(metadata)
        except RemotePolicyError:
            with contextlib.suppress(Exception):
                ws.close()
            self._back_off()
            raise
        self._ws, self._next_backoff_s, self.metadata = ws, self._backoff_s, metadata
        horizon = metadata.get("horizon")
        self.horizon = int(horizon) if isinstance(horizon, int) and horizon > 0 else self.horizon

    def _back_off(self) -> None:
        self._retry_at = time.monotonic() + self._next_backoff_s
        self._next_backoff_s = min(2.0 * self._next_backoff_s, self._backoff_max_s)

    def _drop(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):  # already broken: nothing more to do with it
                ws.close()

    def close(self) -> None:
        with self._lock:
            self._drop()

    def warmup(self) -> None:
        """Connect (and so learn what the server says of itself); RemotePolicyError when it is not there."""
        with self._lock:
            if self._ws is None:
                self._connect()

    # ---------------------------------------------------------------- one round trip
    def round_trip(self, message: Any, parse: Callable[[Any, float, float], ChunkResult]) -> ChunkResult:
        """Send one request, parse its reply with parse(reply, start_wall_s, end_wall_s) into a chunk (whose
        length is the horizon where the server's metadata gave none)."""
        from websockets.exceptions import ConnectionClosed

        with self._lock:
            if self._ws is None:
                self._connect()
            start, wall = time.monotonic(), time.time()
            try:
                self._ws.send(self._packb(message))
                reply = self._ws.recv(timeout=self._timeout_s)
            except TimeoutError as exc:
                self._drop()
                raise RemotePolicyError(f"{self.uri}: no reply within {self._timeout_s} s") from exc
            except ConnectionClosed as exc:
                self._drop()
                raise RemotePolicyError(f"{self.uri}: connection closed ({exc})") from exc
            self.round_trip_s = time.monotonic() - start
            if isinstance(reply, str):  # the server's traceback, then close 1011
                self._drop()
                raise RemotePolicyError(f"{self.uri}: server error: {reply.strip().splitlines()[-1:]}")
            try:
                result = parse(self._unpackb(reply), wall, wall + self.round_trip_s)
            except ProtocolError as exc:
                self._drop()
                raise RemotePolicyError(f"{self.uri}: bad response from the {self.protocol} server: {exc}") from exc
            self.horizon = self.horizon or len(result.actions)
            return result
