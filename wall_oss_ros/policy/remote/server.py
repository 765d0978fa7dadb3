"""Our policy server: a local backend (either model family, RTC and subtasks included) behind openpi's
websocket protocol, so that any openpi client — ours, openpi's own `WebsocketClientPolicy`, a script on
another robot stack — can use a GPU on another machine. No ROS on the GPU box.

Per connection: the metadata frame first (msgpack map), then one response per request. A request that
cannot be read, or an inference that raises, is answered as openpi's server does: a text frame with the
error, then close 1011. Inference runs one at a time (one model, one GPU); several clients are served
in turn. GET /healthz answers 200 "OK". With an API key, a handshake without `Authorization: Api-Key
<key>` (openpi's header) is refused with 401. The bind address is loopback unless set explicitly.
"""

from __future__ import annotations

import asyncio
import hmac
import threading
import time
import traceback
from http import HTTPStatus

from wall_oss_ros.policy.backend import PolicyBackend
from wall_oss_ros.policy.remote import openpi_codec
from wall_oss_ros.policy.remote.openpi_messages import parse_request, response_message

DEFAULT_PORT = 8000  # openpi's serve_policy default


class PolicyServer:
    def __init__(self, backend: PolicyBackend, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                 api_key: str | None = None) -> None:
        self.backend, self.host, self.port, self._api_key = backend, host, port, api_key
        self._infer_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self.requests = 0  # answered requests (for tests and logs)

    def metadata(self) -> dict:
        c = self.backend.contract
        return {"server": "wall_oss_ros", "contract": c.name, "action_names": list(c.action_names),
                "cameras": [cam.name for cam in c.cameras], "horizon": int(self.backend.horizon),
                "dt_s": float(self.backend.dt_s)}

    # ---------------------------------------------------------------- HTTP side
    def _process_request(self, connection, request):  # noqa: ANN001, ANN202 - websockets' types
        if request.path == "/healthz":
            return connection.respond(HTTPStatus.OK, "OK\n")
        if self._api_key is not None:
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Api-Key {self._api_key}".encode()):
                return connection.respond(HTTPStatus.UNAUTHORIZED, "missing or wrong API key\n")
        return None

    # ---------------------------------------------------------------- websocket side
    def _infer(self, frame: bytes) -> bytes:
        observation, rtc = parse_request(openpi_codec.unpackb(frame))
        with self._infer_lock:
            start = time.perf_counter()
            result = self.backend.infer(observation, rtc)
            infer_ms = 1e3 * (time.perf_counter() - start)
        return openpi_codec.packb(response_message(result, infer_ms))

    async def _handler(self, ws) -> None:  # noqa: ANN001 - websockets' ServerConnection
        from websockets.exceptions import ConnectionClosed

        await ws.send(openpi_codec.packb(self.metadata()))
        while True:
            try:
                frame = await ws.recv()
            except ConnectionClosed:
                return
            try:
                if isinstance(frame, str):
                    raise openpi_codec.ProtocolError("expected a binary msgpack frame, got text")
                reply = await asyncio.to_thread(self._infer, frame)
            except Exception:
                try:
                    await ws.send(traceback.format_exc())
                    await ws.close(code=1011, reason="inference failed")
                except ConnectionClosed:
                    pass
                return
            try:
                await ws.send(reply)
            except ConnectionClosed:
                return
            self.requests += 1

    async def _serve(self) -> None:
        from websockets.asyncio.server import serve

        self._stop = asyncio.Event()
        async with serve(self._handler, self.host, self.port, compression=None,
                         max_size=openpi_codec.MAX_FRAME_BYTES, process_request=self._process_request) as server:
            self.port = server.sockets[0].getsockname()[1]  # the port bound (port 0: any free one)
            self._ready.set()
            await self._stop.wait()

    def serve_forever(self) -> None:
        asyncio.run(self._serve())

    def start(self, timeout_s: float = 10.0) -> int:
        """Serve from a background thread; returns the bound port."""
        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self._serve())

        self._thread = threading.Thread(target=run, name="policy-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise RuntimeError(f"policy server did not start on {self.host}:{self.port}")
        return self.port

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=10.0)
