"""What serving the policy over a websocket adds to a chunk, per protocol, against the local backend.

The tiny random checkpoint on the CPU (inference itself is then small, so the protocol's share shows), a
server on loopback in this process, our client: per request the local infer and the remote round trip
alternate on the same observation; p50 / p99 of each, their difference and ratio, and the bytes of a
request and a response. 448² frames.

openpi: our server (`wall-oss-ros serve`) and `OpenpiBackend`; 1 camera (ALOHA) and 3 cameras (the 26-D
mobile manipulator). wall-x: `WallxBackend` against the wall-x server's framing and codec (the test
stand-in's server: msgpack-numpy, base64 JPEG decoded with OpenCV on its single-request path) around the
same local backend, which converts its ZYX poses to and from the contract as the wall-x server converts
its model's; bimanual_ee with 1 camera (front only) and 3 cameras.

    python benchmarks/bench_remote.py [--requests 40] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from wall_oss_ros.core.contract import RobotContract, load_contract
from wall_oss_ros.core.resources import config_path
from wall_oss_ros.policy.backend import Observation, PolicyBackend
from wall_oss_ros.policy.loader import load_backend
from wall_oss_ros.policy.remote import openpi_codec
from wall_oss_ros.policy.remote.openpi_backend import OpenpiBackend
from wall_oss_ros.policy.remote.openpi_messages import request_message, response_message
from wall_oss_ros.policy.remote.server import PolicyServer
from wall_oss_ros.policy.remote.wallx_backend import WallxBackend
from wall_oss_ros.policy.remote.wallx_schema import parse_schema
from wall_oss_ros.policy.wall_oss.processor_wall_oss import state_slots
from wall_oss_ros.tools.make_tiny_checkpoint import write

SIDE = 448
CASES = {"1 camera (aloha_bimanual)": "aloha_bimanual", "3 cameras (mobile_manipulator)": "mobile_manipulator"}
WALLX_CASES = {"1 camera (bimanual_ee, front)": 1, "3 cameras (bimanual_ee)": 3}


def measure(backend: PolicyBackend, client: object, contract: RobotContract, state: np.ndarray,
            requests: int) -> tuple[list[float], list[float], Observation]:
    """Local infer and the remote round trip, alternating on the same observation (3 warm-up requests)."""
    rng = np.random.default_rng(0)
    images = {cam.name: rng.integers(0, 255, (SIDE, SIDE, 3), dtype=np.uint8) for cam in contract.cameras}
    local_ms, remote_ms = [], []
    observation = None
    for k in range(requests + 3):
        observation = Observation(images, state, "fold the towel", 1_700_000_000_000_000_000 + k)
        t0 = time.perf_counter()
        backend.infer(observation)
        t1 = time.perf_counter()
        client.infer(observation)
        t2 = time.perf_counter()
        if k >= 3:  # warm
            local_ms.append(1e3 * (t1 - t0))
            remote_ms.append(1e3 * (t2 - t1))
    return local_ms, remote_ms, observation


def figures(local_ms: list[float], remote_ms: list[float], request_bytes: int, response_bytes: int) -> dict:
    lp, rp = np.percentile(local_ms, [50, 99]), np.percentile(remote_ms, [50, 99])
    return {"local_p50_ms": lp[0], "local_p99_ms": lp[1], "remote_p50_ms": rp[0], "remote_p99_ms": rp[1],
            "overhead_p50_ms": rp[0] - lp[0], "ratio_p50": rp[0] / lp[0], "request_bytes": request_bytes,
            "response_bytes": response_bytes, "requests": len(local_ms)}


def run_openpi(name: str, requests: int, root: Path) -> dict[str, float]:
    contract = load_contract(config_path("robots", f"{name}.yaml"))
    backend, _ = load_backend(write(root / name, "transformers", name, seed=0), contract, device="cpu")
    backend.warmup()
    server = PolicyServer(backend, port=0)
    client = OpenpiBackend(f"ws://127.0.0.1:{server.start()}", contract, timeout_s=120.0)
    client.warmup()
    local_ms, remote_ms, observation = measure(backend, client, contract, np.zeros(len(state_slots(contract))),
                                               requests)
    client.close()
    server.stop()
    local = backend.infer(observation)
    return figures(local_ms, remote_ms, len(openpi_codec.packb(request_message(observation, None))),
                   len(openpi_codec.packb(response_message(local, 0.0))))


class LocalBehindWallx:
    """The local backend as a wall-x server's policy: its views decoded as that server's single path does
    (cv2.imdecode, no conversion), its ZYX poses turned into the contract's state and the chunk back into
    (1+H) absolute rows, row 0 the state, as that server serialises its model's relative actions."""

    def __init__(self, backend: PolicyBackend, contract: RobotContract, schema: object) -> None:
        self.backend, self.contract, self.schema = backend, contract, schema

    def infer(self, obs: dict) -> dict:
        import base64

        import cv2
        from scipy.spatial.transform import Rotation

        from wall_oss_ros.core.rotations import matrix_to_rot6d, rot6d_to_matrix

        images = {cam: cv2.imdecode(np.frombuffer(base64.b64decode(obs["views"][key]), np.uint8), cv2.IMREAD_COLOR)
                  for key, cam in self.schema.views}
        state = []
        for arm in self.schema.arms:
            pose = np.asarray(obs["state"][arm.key], dtype=float)
            state += [*pose[:3], *matrix_to_rot6d(Rotation.from_euler("xyz", pose[3:6]).as_matrix()), pose[6]]
        chunk = self.backend.infer(Observation(images, np.array(state), obs["instruction"]))
        reply = {}
        for arm in self.schema.arms:
            columns = self.contract.action_slice(arm.pose_group)
            pose = np.asarray(obs["state"][arm.key], dtype=float)
            rotation = Rotation.from_euler("xyz", pose[3:6]).as_matrix()
            relative = chunk.actions[:, columns]
            absolute = rot6d_to_matrix(relative[:, 3:9]) @ rotation
            rows = np.concatenate([pose[:3] + relative[:, :3], Rotation.from_matrix(absolute).as_euler("xyz"),
                                   chunk.actions[:, self.contract.action_slice(arm.gripper_group)]], axis=1)
            reply[arm.key] = [pose.tolist(), *rows.tolist()]
        return reply


def run_wallx(cameras: int, requests: int, root: Path) -> dict[str, float]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's test/support
    from test.support.serving_standin import StandinServer, packb

    raw = yaml.safe_load(config_path("robots", "bimanual_ee.yaml").read_text())
    raw["cameras"] = raw["cameras"][:cameras]
    (root / f"bimanual_ee_{cameras}.yaml").write_text(yaml.safe_dump(raw))
    contract = load_contract(root / f"bimanual_ee_{cameras}.yaml")
    schema_raw = yaml.safe_load(config_path("servers", "wallx_bimanual_ee.yaml").read_text())
    schema_raw["views"] = dict(list(schema_raw["views"].items())[:cameras])
    schema = parse_schema(schema_raw, contract)
    backend, _ = load_backend(write(root / f"ee{cameras}", "transformers", "bimanual_ee", seed=0), contract,
                              device="cpu")
    backend.warmup()
    policy = LocalBehindWallx(backend, contract, schema)
    server = StandinServer(policy, port=0)
    client = WallxBackend(f"ws://127.0.0.1:{server.start()}", contract, schema, timeout_s=120.0)
    client.warmup()
    state = []
    for x in (0.3, 0.35):  # arms in the middle of the workspace, gripper half open
        state += [x, 0.0, 0.4, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.04]
    state = np.array(state)
    local_ms, remote_ms, observation = measure(backend, client, contract, state, requests)
    client.close()
    server.stop()
    from wall_oss_ros.policy.remote import wallx_codec
    from wall_oss_ros.policy.remote.wallx_messages import request_message as wallx_request

    request = wallx_codec.packb(wallx_request(observation, contract, schema))
    response = packb(policy.infer(wallx_codec.unpackb(request)))
    return figures(local_ms, remote_ms, len(request), len(response))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}; tiny checkpoint on the CPU, {SIDE}² frames, loopback")
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        cases = [("openpi", label, lambda n=name: run_openpi(n, args.requests, Path(tmp)))
                 for label, name in CASES.items()]
        cases += [("wall-x", label, lambda n=n: run_wallx(n, args.requests, Path(tmp)))
                  for label, n in WALLX_CASES.items()]
        for protocol, label, case in cases:
            r = rows[f"{protocol} {label}"] = case()
            print(f"{protocol:6s} {label:32s} local p50 {r['local_p50_ms']:7.1f} p99 {r['local_p99_ms']:7.1f} ms | "
                  f"remote p50 {r['remote_p50_ms']:7.1f} p99 {r['remote_p99_ms']:7.1f} ms | overhead p50 "
                  f"{r['overhead_p50_ms']:6.1f} ms, ratio {r['ratio_p50']:.2f} | request {r['request_bytes']} B, "
                  f"response {r['response_bytes']} B")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
