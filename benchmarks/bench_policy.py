"""Chunk latency of the WALL-OSS runtimes, every variant timed interleaved in one run.

Builds the architecture of a family (--family flow: wall-oss-flow/-fast; 0.5: WALL-OSS-0.5, no FAST
branch) from its size profile (policy/wall_oss/size_profiles.py, policy/wall_oss_05/
size_profiles_wall_oss_05.py) with random weights
(nothing is downloaded) and times one chunk for synthetic images of the given size:
  flow, full recompute   vision + the whole sequence at each of the Euler steps (LeRobot's path)
  flow, prefix KV cache  vision + prefix once, then only the 32 action tokens per step
  fast, N tokens         vision + prefix once, then N greedy tokens with the KV cache (wall-oss-fast answers
                         a chunk with tens of tokens; the reference allows 100)
in each dtype asked for (fp32, and bf16 with fp32 norms and action head, as on a GPU). Ratios are of
p50s measured in the same run. Sizes: tiny (the test checkpoint's dimensions), small (a CPU stand-in
where compute, not Python, dominates), real (the published wall-oss-flow, ≈ 4 B parameters; for a GPU).

    python benchmarks/bench_policy.py [--family flow|0.5] [--size tiny|small|real] [--cameras 1] [--image 224]
        [--runs 20] [--dtypes fp32,bf16] [--fast-tokens 50] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch

from wall_oss_ros.policy.wall_oss.backend_wall_oss import cast_for_device, torch_dtype
from wall_oss_ros.policy.wall_oss.configuration_wall_oss import WallOssConfig
from wall_oss_ros.policy.wall_oss.modeling_wall_oss import ModelInputs, WallOssForAction
from wall_oss_ros.policy.wall_oss.size_profiles import REAL_VOCAB_ROWS, SIZES, size_config
from wall_oss_ros.policy.wall_oss_05 import size_profiles_wall_oss_05 as sizes_05
from wall_oss_ros.policy.wall_oss_05.configuration_wall_oss_05 import WallOss05Config
from wall_oss_ros.policy.wall_oss_05.modeling_wall_oss_05 import Inputs05, WallOss05ForAction

STATE_TEXT_TOKENS = 52  # WALL-OSS-0.5's 26 state bins as text: about two tokens each


def synthetic_inputs(config: WallOssConfig, cameras: int, image: int, horizon: int, device: str,
                     action_tokens: bool = True) -> ModelInputs:
    """The token layout of a real prompt: ~20 text tokens, per camera a vision block, 1 <|propri|>, the actions."""
    v = config.text.vocab_size
    action_id, propri_id = v - 4, v - 5
    patches = image // 14
    merged = (patches // 2) ** 2
    ids = list(range(10, 30))
    for _ in range(cameras):
        ids += [config.vision_start_token_id] + [config.image_token_id] * merged + [40, 41]
    ids += list(range(50, 70)) + [propri_id] + [71, 72] + ([action_id] * horizon if action_tokens else [73, 74])
    input_ids = torch.tensor([ids], device=device)
    grid = torch.tensor([[1, patches, patches]] * cameras, device=device)
    pixels = torch.randn(cameras * patches * patches, 3 * 2 * 14 * 14, device=device)
    width = config.action_dim
    return ModelInputs(input_ids, torch.ones_like(input_ids), pixels, grid, torch.randn(1, 1, width, device=device),
                       torch.ones(1, 1, width, device=device), torch.ones(1, horizon, width, device=device))


def synthetic_inputs_05(config: WallOss05Config, cameras: int, image: int, horizon: int, device: str) -> Inputs05:
    """The 0.5 prompt's layout: text, per camera a vision block, the state as text, the actions."""
    action_id = config.text.vocab_size - 5
    patches = image // 14
    ids = list(range(10, 30))
    for _ in range(cameras):
        ids += [config.vision_start_token_id] + [config.image_token_id] * (patches // 2) ** 2 + [40, 41]
    ids += list(range(50, 70)) + list(range(100, 100 + STATE_TEXT_TOKENS)) + [71, 72] + [action_id] * horizon
    input_ids = torch.tensor([ids], device=device)
    grid = torch.tensor([[1, patches, patches]] * cameras, device=device)
    pixels = torch.randn(cameras * patches * patches, 3 * 2 * 14 * 14, device=device)
    return Inputs05(input_ids, torch.ones_like(input_ids), pixels, grid,
                    torch.ones(1, horizon, config.action_dim, device=device))


def build_05(size: str, device: str, dtype_name: str) -> WallOss05ForAction:
    torch.manual_seed(0)
    config = WallOss05Config.from_dict(sizes_05.size_config(size))
    model = WallOss05ForAction(config, action_token_id=config.text.vocab_size - 5)
    cast_for_device(model, device, torch_dtype(dtype_name))
    return model.eval()


def build(size: str, device: str, dtype_name: str) -> WallOssForAction:
    torch.manual_seed(0)
    raw = size_config(size)
    rows = REAL_VOCAB_ROWS if size == "real" else raw["vocab_size"]
    config = WallOssConfig.from_dict(raw).with_vocab_rows(rows)
    v = config.text.vocab_size
    model = WallOssForAction(config, action_token_id=v - 4, propri_token_id=v - 5)
    cast_for_device(model, device, torch_dtype(dtype_name))
    return model.eval()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", choices=("flow", "0.5"), default="flow")
    parser.add_argument("--size", choices=SIZES, default="tiny")
    parser.add_argument("--cameras", type=int, default=1)
    parser.add_argument("--image", type=int, default=224, help="square image side [px]")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--dtypes", default="fp32,bf16", help="comma-separated: fp32, bf16")
    parser.add_argument("--fast-tokens", type=int, default=50, help="tokens a FAST chunk generates (0: skip)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json")
    args = parser.parse_args()
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    variants = {}
    if args.family == "0.5":
        args.fast_tokens = 0  # WALL-OSS-0.5 publishes the flow branch only
    for dtype_name in args.dtypes.split(","):
        if args.family == "0.5":
            model = build_05(args.size, args.device, dtype_name)
            flow_inputs = synthetic_inputs_05(model.config, args.cameras, args.image, 32, args.device)
        else:
            model = build(args.size, args.device, dtype_name)
            flow_inputs = synthetic_inputs(model.config, args.cameras, args.image, 32, args.device)
            fast_inputs = synthetic_inputs(model.config, args.cameras, args.image, 32, args.device,
                                           action_tokens=False)
        noise = torch.randn(1, 32, model.config.action_dim, device=args.device)
        variants[f"flow, full recompute, {dtype_name}"] = lambda m=model, i=flow_inputs, n=noise: m.sample_actions(
            i, n, args.steps, use_prefix_cache=False)
        variants[f"flow, prefix KV cache, {dtype_name}"] = lambda m=model, i=flow_inputs, n=noise: m.sample_actions(
            i, n, args.steps, use_prefix_cache=True)
        if args.fast_tokens > 0:  # no stop token: exactly fast_tokens greedy steps
            variants[f"fast, {args.fast_tokens} tokens, {dtype_name}"] = (
                lambda m=model, i=fast_inputs: m.generate_tokens(i, args.fast_tokens, set()))
    times: dict[str, list[float]] = {label: [] for label in variants}
    with torch.inference_mode():
        for _ in range(2):  # warm-up
            for run in variants.values():
                run()
        for _ in range(args.runs):  # interleaved so every variant sees the same machine state
            for label, run in variants.items():
                sync()
                t0 = time.perf_counter()
                run()
                sync()
                times[label].append((time.perf_counter() - t0) * 1e3)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(f"machine: {platform.machine()}, device {args.device}, torch {torch.__version__}; family {args.family}, "
          f"size {args.size} "
          f"({params:.1f} M parameters), {args.cameras} camera(s) {args.image}², "
          f"{flow_inputs.input_ids.shape[1]} tokens, {args.steps} Euler steps, {args.runs} runs")
    result = {}
    for label, values in times.items():
        arr = np.array(values)
        result[label] = {"p50_ms": float(np.percentile(arr, 50)), "p95_ms": float(np.percentile(arr, 95))}
        print(f"{label:34s} p50 {result[label]['p50_ms']:9.2f} ms  p95 {result[label]['p95_ms']:9.2f} ms")
    ratios = {}
    for dtype_name in args.dtypes.split(","):
        cached = result[f"flow, prefix KV cache, {dtype_name}"]["p50_ms"]
        ratios[f"KV cache speed-up, {dtype_name}"] = result[f"flow, full recompute, {dtype_name}"]["p50_ms"] / cached
        if args.fast_tokens > 0:
            ratios[f"fast / flow (KV cache), {dtype_name}"] = (
                result[f"fast, {args.fast_tokens} tokens, {dtype_name}"]["p50_ms"] / cached)
    names = args.dtypes.split(",")
    if "fp32" in names and "bf16" in names:
        ratios["bf16 / fp32, flow KV cache"] = (result["flow, prefix KV cache, bf16"]["p50_ms"]
                                                / result["flow, prefix KV cache, fp32"]["p50_ms"])
    for label, ratio in ratios.items():
        print(f"{label:34s} {ratio:6.2f}x (p50, same run)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": result, "ratios": ratios}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
