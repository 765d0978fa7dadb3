"""What serving the policy over openpi's websocket protocol adds to a chunk, against the local backend.

The tiny random checkpoint on the CPU (inference itself is then small, so the protocol's share shows),
our server on loopback in this process, our client: per request the local infer and the remote round
trip alternate on the same observation; p50 / p99 of each, their difference and ratio, and the bytes of a
request and a response. With 1 camera (ALOHA) and 3 cameras (the 26-D mobile manipulator), 448² frames.

    python benchmarks/bench_remote.py [--requests 40] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from wall_oss_ros.core.contract import load_contract
from wall_oss_ros.core.resources import config_path
from wall_oss_ros.policy.backend import Observation
from wall_oss_ros.policy.loader import load_backend
from wall_oss_ros.policy.remote import openpi_codec
from wall_oss_ros.policy.remote.openpi_backend import OpenpiBackend
from wall_oss_ros.policy.remote.openpi_messages import request_message, response_message
from wall_oss_ros.policy.remote.server import PolicyServer
from wall_oss_ros.policy.wall_oss.processor_wall_oss import state_slots
from wall_oss_ros.tools.make_tiny_checkpoint import write

SIDE = 448
CASES = {"1 camera (aloha_bimanual)": "aloha_bimanual", "3 cameras (mobile_manipulator)": "mobile_manipulator"}


def run(name: str, requests: int, root: Path) -> dict[str, float]:
    contract = load_contract(config_path("robots", f"{name}.yaml"))
    backend, _ = load_backend(write(root / name, "transformers", name, seed=0), contract, device="cpu")
    backend.warmup()
    rng = np.random.default_rng(0)
    images = {cam.name: rng.integers(0, 255, (SIDE, SIDE, 3), dtype=np.uint8) for cam in contract.cameras}
    server = PolicyServer(backend, port=0)
    client = OpenpiBackend(f"ws://127.0.0.1:{server.start()}", contract, timeout_s=120.0)
    client.warmup()
    local_ms, remote_ms = [], []
    state = np.zeros(len(state_slots(contract)))
    observation = None
    for k in range(requests + 3):
        observation = Observation(images, state, "fold the towel", 1_700_000_000_000_000_000 + k)
        t0 = time.perf_counter()
        local = backend.infer(observation)
        t1 = time.perf_counter()
        client.infer(observation)
        t2 = time.perf_counter()
        if k >= 3:  # warm
            local_ms.append(1e3 * (t1 - t0))
            remote_ms.append(1e3 * (t2 - t1))
    client.close()
    server.stop()
    request_bytes = len(openpi_codec.packb(request_message(observation, None)))
    response_bytes = len(openpi_codec.packb(response_message(local, 0.0)))
    lp, rp = np.percentile(local_ms, [50, 99]), np.percentile(remote_ms, [50, 99])
    return {"local_p50_ms": lp[0], "local_p99_ms": lp[1], "remote_p50_ms": rp[0], "remote_p99_ms": rp[1],
            "overhead_p50_ms": rp[0] - lp[0], "ratio_p50": rp[0] / lp[0], "request_bytes": request_bytes,
            "response_bytes": response_bytes, "requests": requests}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}; tiny checkpoint on the CPU, {SIDE}² frames, loopback")
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, name in CASES.items():
            r = rows[label] = run(name, args.requests, Path(tmp))
            print(f"{label:32s} local p50 {r['local_p50_ms']:7.1f} p99 {r['local_p99_ms']:7.1f} ms | openpi p50 "
                  f"{r['remote_p50_ms']:7.1f} p99 {r['remote_p99_ms']:7.1f} ms | overhead p50 "
                  f"{r['overhead_p50_ms']:6.1f} ms, ratio {r['ratio_p50']:.2f} | request {r['request_bytes']} B, "
                  f"response {r['response_bytes']} B")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
