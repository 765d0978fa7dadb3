"""Stand-ins for the policy servers robot stacks speak to; mainly the wall-x 1.1.0 server, built only from what
that server is made of, none of our code: msgpack with msgpack-numpy's encode/decode (what its `m.patch()`
installs), websockets' asyncio server, OpenCV's base64 JPEG decoding on its single-request path (no channel
conversion) or its batched path (BGR → RGB), and its reply schema: per arm (1+H) rows of [x y z roll pitch yaw
grip] as Python lists, row 0 the state it was sent, `server_timing` added, a failure as a text frame with the
traceback then close 1011 (or, on the batched path, `{"action": {}, "error": ...}`).

Its "model" makes a chunk the client can check: step k moves each arm's position by k·STEP_M times the
mean (R, G, B)/255 of the front camera as the model receives it (so a channel swap shows), turns it by
k·TURN_RAD about the base z axis, and opens the gripper by k·GRIP. Rotations are built from explicit
Rz·Ry·Rx matrices, wall-x's convention, not from any library call the client also makes.

The serving loop is openpi's too (wall-x took it from openpi): with openpi-client's codec passed in, the
same server stands in for an openpi policy server.

Runs in a thread (`StandinServer`) or as its own process (`python serving_standin.py --port N ...`, for
tests that kill it mid-request).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import http
import math
import threading
import time
import traceback
from collections.abc import Callable

import cv2
import msgpack
import msgpack_numpy
import numpy as np
import websockets.asyncio.server as ws_server
import websockets.frames

METADATA = {"batch_enabled": True, "model": "wall-x", "env": "x2robot"}
HORIZON = 8
STEP_M = 0.002
TURN_RAD = 0.01
GRIP = 0.001
SUBTASK = "grasp the cup handle"


def packb(obj: object) -> bytes:
    return msgpack.packb(obj, default=msgpack_numpy.encode)


def unpackb(frame: bytes) -> object:
    return msgpack.unpackb(frame, object_hook=msgpack_numpy.decode)


def zyx_matrix(roll: float, pitch: float, yaw: float) -> np.ndarray:
    cr, sr, cp, sp, cy, sy = math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch), math.cos(yaw), \
        math.sin(yaw)
    return np.array([[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                     [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                     [-sp, cp * sr, cp * cr]])


def zyx_euler(m: np.ndarray) -> list[float]:
    return [math.atan2(m[2, 1], m[2, 2]), math.asin(max(-1.0, min(1.0, -m[2, 0]))), math.atan2(m[1, 0], m[0, 0])]


class StandinPolicy:
    def __init__(self, batched: bool = False, image_passing: str = "base64", raw: bool = False,
                 trim_front: bool = False, fail: bool = False, delay_s: float = 0.0) -> None:
        """batched: as with --max-batch-size; raw: --serialize-actions false (predict_action); trim_front:
        robot_action_start_ratio > 0 (row 0 cut off); fail: every inference raises; delay_s: slow model."""
        self.batched, self.image_passing, self.raw = batched, image_passing, raw
        self.trim_front, self.fail, self.delay_s = trim_front, fail, delay_s
        self.seen: list[dict] = []  # per request: what the model received

    def _view(self, value: object) -> np.ndarray:
        if self.image_passing == "base64":
            image = cv2.imdecode(np.frombuffer(base64.b64decode(value), dtype=np.uint8), cv2.IMREAD_COLOR)
            return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if self.batched else image
        return np.asarray(value)

    def infer(self, obs: dict) -> dict:
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.fail:
            raise RuntimeError("CUDA out of memory (stand-in)")
        views = {k: self._view(v) for k, v in obs["views"].items()}
        colour = views["camera_front"].reshape(-1, 3).mean(axis=0) / 255.0
        self.seen.append({"views": views, "state": obs["state"], "instruction": obs.get("instruction"),
                          "infer_mode": obs.get("infer_mode")})
        reply: dict = {}
        if self.raw:
            reply["predict_action"] = np.tile(np.arange(20, dtype=np.float32) * 0.01, (1, HORIZON, 1)) * \
                np.arange(1, HORIZON + 1, dtype=np.float32)[None, :, None]
        for key in ("follow1_pos", "follow2_pos"):
            if self.raw or key not in obs["state"]:
                continue
            state = np.asarray(obs["state"][key], dtype=np.float64).reshape(-1)[:7]
            rows = [state.tolist()]
            base = zyx_matrix(*state[3:6])
            for k in range(1, HORIZON + 1):
                turn = zyx_matrix(0.0, 0.0, k * TURN_RAD)
                rows.append(list(state[:3] + k * STEP_M * colour) + zyx_euler(turn @ base) + [state[6] + k * GRIP])
            reply[key] = rows[1:] if self.trim_front else rows
        if obs.get("infer_mode") == "flow_with_subtask":
            reply["subtask"] = SUBTASK
        return reply


def _health(connection, request):
    if request.path == "/healthz":
        return connection.respond(http.HTTPStatus.OK, "OK\n")
    return None


class StandinServer:
    """The serving loop wall-x took from openpi's (`WebsocketPolicyServer`): openpi's is the same with
    openpi-client's codec, given as packb / unpackb."""

    def __init__(self, policy: StandinPolicy, port: int = 0, metadata: dict | None = None,
                 error_reply: bool = False, packb: Callable[[object], bytes] = packb,
                 unpackb: Callable[[bytes], object] = unpackb) -> None:
        """error_reply: a failing inference answers as the batched path does ({"action": {}, "error"})."""
        self.policy, self.port, self.metadata, self.error_reply = policy, port, metadata or METADATA, error_reply
        self._packb, self._unpackb = packb, unpackb
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    async def _handler(self, websocket) -> None:
        await websocket.send(self._packb(self.metadata))
        while True:
            try:
                obs = self._unpackb(await websocket.recv())
                start = time.monotonic()
                try:
                    action = await asyncio.to_thread(self.policy.infer, obs)
                except Exception as exc:
                    if not self.error_reply:
                        raise
                    action = {"action": {}, "error": str(exc)}
                action["server_timing"] = {"infer_ms": 1e3 * (time.monotonic() - start)}
                await websocket.send(self._packb(action))
            except websockets.ConnectionClosed:
                break
            except Exception:
                await websocket.send(traceback.format_exc())
                await websocket.close(code=websockets.frames.CloseCode.INTERNAL_ERROR,
                                      reason="Internal server error. Traceback included in previous frame.")
                break

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with ws_server.serve(self._handler, "127.0.0.1", self.port, compression=None, max_size=None,
                                   ping_interval=None, ping_timeout=None, process_request=_health) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop.wait()

    def start(self) -> int:
        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self._main())

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        self._ready.wait(10.0)
        return self.port

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(5.0)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-s", type=float, default=0.0)
    args = parser.parse_args()
    StandinServer(StandinPolicy(delay_s=args.delay_s), port=args.port).start()
    print("serving", flush=True)
    threading.Event().wait()
