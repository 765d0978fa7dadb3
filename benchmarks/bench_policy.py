"""Chunk latency of the WALL-OSS runtime: full recompute (the reference path) vs prefix KV cache.

Builds the architecture from a config with random weights (nothing is downloaded) and times one chunk
(vision + prefix + 10 Euler steps over 32 action tokens) for synthetic images of the given size.
Sizes: tiny (the test checkpoint's dimensions), small (a CPU-sized stand-in where compute, not Python,
dominates), real (Qwen2.5-VL-3B + a 1024-wide action expert, ≈4 B parameters; for a GPU).

    python benchmarks/bench_policy.py [--size tiny|small|real] [--cameras 1] [--image 224] [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch

from wall_oss_ros.policy.wall_oss.backend_wall_oss import cast_for_device
from wall_oss_ros.policy.wall_oss.configuration_wall_oss import WallOssConfig
from wall_oss_ros.policy.wall_oss.modeling_wall_oss import ModelInputs, WallOssForAction

VOCAB = 151_936 + 64  # Qwen2.5 vocabulary plus added special tokens (real size)


def size_config(size: str) -> dict:
    if size == "real":  # Qwen2.5-VL-3B text + vision; action expert as in wall-x (dim_inputs [2048, 1024])
        text = dict(vocab_size=VOCAB, hidden_size=2048, intermediate_size=11008, num_hidden_layers=36,
                    num_attention_heads=16, num_key_value_heads=2, mrope=[16, 24, 24])
        vision = dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, fullatt=[7, 15, 23, 31])
        expert = (1024, 2048)
    elif size == "small":
        text = dict(vocab_size=4096, hidden_size=512, intermediate_size=1536, num_hidden_layers=8,
                    num_attention_heads=8, num_key_value_heads=2, mrope=[8, 12, 12])
        vision = dict(depth=4, hidden_size=256, intermediate_size=512, num_heads=4, fullatt=[3])
        expert = (256, 512)
    else:
        text = dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, mrope=[2, 3, 3])
        vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, fullatt=[1])
        expert = (64, 96)
    hidden = text["hidden_size"]
    v = text["vocab_size"]
    return {
        **{k: text[k] for k in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                                "num_attention_heads", "num_key_value_heads")},
        "rms_norm_eps": 1e-6, "rope_theta": 1e6, "rope_scaling": {"type": "mrope", "mrope_section": text["mrope"]},
        "tie_word_embeddings": True, "image_token_id": v - 1, "video_token_id": v - 2, "vision_start_token_id": v - 3,
        "vision_config": {"depth": vision["depth"], "hidden_size": vision["hidden_size"],
                          "intermediate_size": vision["intermediate_size"], "num_heads": vision["num_heads"],
                          "out_hidden_size": hidden, "patch_size": 14, "spatial_merge_size": 2,
                          "temporal_patch_size": 2, "window_size": 112, "fullatt_block_indexes": vision["fullatt"],
                          "in_channels": 3, "tokens_per_second": 2, "hidden_act": "silu"},
        "num_experts": 2, "dim_inputs": [hidden, expert[0]],
        "experts": [{"hidden_size": hidden, "intermediate_size": text["intermediate_size"], "hidden_act": "silu"},
                    {"hidden_size": expert[0], "intermediate_size": expert[1], "hidden_act": "silu"}],
        "dof_config": {"action": 20}, "agent_pos_config": {"state": 20},
    }


def synthetic_inputs(config: WallOssConfig, cameras: int, image: int, horizon: int, device: str) -> ModelInputs:
    """The token layout of a real prompt: ~20 text tokens, per camera a vision block, 1 <|propri|>, the actions."""
    v = config.text.vocab_size
    action_id, propri_id = v - 4, v - 5
    patches = image // 14
    merged = (patches // 2) ** 2
    ids = list(range(10, 30))
    for _ in range(cameras):
        ids += [config.vision_start_token_id] + [config.image_token_id] * merged + [40, 41]
    ids += list(range(50, 70)) + [propri_id] + [71, 72] + [action_id] * horizon
    input_ids = torch.tensor([ids], device=device)
    grid = torch.tensor([[1, patches, patches]] * cameras, device=device)
    pixels = torch.randn(cameras * patches * patches, 3 * 2 * 14 * 14, device=device)
    return ModelInputs(input_ids, torch.ones_like(input_ids), pixels, grid, torch.randn(1, 1, 20, device=device),
                       torch.ones(1, 1, 20, device=device), torch.ones(1, horizon, 20, device=device))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=["tiny", "small", "real"], default="tiny")
    parser.add_argument("--cameras", type=int, default=1)
    parser.add_argument("--image", type=int, default=224, help="square image side [px]")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.manual_seed(0)
    config = WallOssConfig.from_dict(size_config(args.size))
    v = config.text.vocab_size
    model = WallOssForAction(config, action_token_id=v - 4, propri_token_id=v - 5)
    dtype = cast_for_device(model, args.device, None)
    model.eval()
    inputs = synthetic_inputs(config, args.cameras, args.image, 32, args.device)
    noise = torch.randn(1, 32, config.action_dim, device=args.device)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    times: dict[str, list[float]] = {"full recompute": [], "prefix KV cache": []}
    with torch.inference_mode():
        for _ in range(2):  # warm-up
            for cached in (False, True):
                model.sample_actions(inputs, noise, args.steps, use_prefix_cache=cached)
        for _ in range(args.runs):  # interleaved so both paths see the same machine state
            for label, cached in (("full recompute", False), ("prefix KV cache", True)):
                sync()
                t0 = time.perf_counter()
                model.sample_actions(inputs, noise, args.steps, use_prefix_cache=cached)
                sync()
                times[label].append((time.perf_counter() - t0) * 1e3)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(f"machine: {platform.machine()}, device {args.device}, dtype {dtype}, torch {torch.__version__}; "
          f"size {args.size} ({params:.1f} M parameters), {args.cameras} camera(s) {args.image}², "
          f"{inputs.input_ids.shape[1]} tokens, {args.steps} steps, {args.runs} runs")
    result = {}
    for label, values in times.items():
        arr = np.array(values)
        result[label] = {"p50_ms": float(np.percentile(arr, 50)), "p95_ms": float(np.percentile(arr, 95))}
        print(f"{label:16s} p50 {result[label]['p50_ms']:9.2f} ms  p95 {result[label]['p95_ms']:9.2f} ms")
    ratio = result["full recompute"]["p50_ms"] / result["prefix KV cache"]["p50_ms"]
    print(f"speed-up of the prefix KV cache (p50, same run): {ratio:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": result, "ratio": ratio}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
