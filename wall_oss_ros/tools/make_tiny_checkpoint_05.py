"""Write a tiny, random-weight WALL-OSS-0.5 checkpoint in a published layout, offline.

Layouts (policy/wall_oss_05/layouts_wall_oss_05.py):
  x-square  x-square-robot/wall-oss-0.5: the author's config.json (Qwen2.5-VL + dim_inputs, experts,
            action_hidden_size, noise_scheduler), model.safetensors with the vision MLP unfused and the
            normalisers inside (action_preprocessor.normalizer_*), a stock Qwen tokenizer without
            <|propri|> / <|action|> (the runtime adds them), q01/q99 in norm_stats.json (wall-x 1.1.0's form)
  lerobot   lerobot/wall-oss-0.5: config.json of "type": "wall_oss_05" with the author config as
            vlm_config, the same model.safetensors, quantile statistics in the pre/post-processors' files
The same seed gives the same weights and statistics in both, so both produce the same actions.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from wall_oss_ros.core.contract import load_contract
from wall_oss_ros.core.resources import config_path
from wall_oss_ros.policy.prompts import ACTION_TOKEN, PROPRI_TOKEN
from wall_oss_ros.policy.wall_oss_05.configuration_wall_oss_05 import ACTION_DIM, STATE_DIM, WallOss05Config
from wall_oss_ros.policy.wall_oss_05.modeling_wall_oss_05 import WallOss05ForAction
from wall_oss_ros.policy.wall_oss_05.size_profiles_wall_oss_05 import size_config
from wall_oss_ros.tools.make_tiny_checkpoint import (
    action_statistics,
    build_hf_processor,
    contract_statistics,
    reactive_init,
    run_cli,
)

LAYOUTS = ("x-square", "lerobot")
QWEN_SPECIAL = ("<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
                "<|video_pad|>", "<|endoftext|>")
DATASET = "tiny"
NORMALIZERS = ("action", "propri")  # continuous-flow action and proprioception normalisers, per dataset
NORM_MAP = {"VISUAL": "IDENTITY", "STATE": "QUANTILES", "ACTION": "QUANTILES"}


def tiny_config(ids: dict[str, int]) -> dict:
    """The author config.json at the test size (text 64 wide, action expert 32, head_dim 16), with the tiny
    tokenizer's ids; its text config names the tokenizer's end and padding tokens."""
    raw = size_config("tiny", {k: ids[t] for k, t in (("image_token_id", "<|image_pad|>"),
                                                      ("video_token_id", "<|video_pad|>"),
                                                      ("vision_start_token_id", "<|vision_start|>"),
                                                      ("vision_end_token_id", "<|vision_end|>"))})
    raw["text_config"].update(max_position_embeddings=4096, bos_token_id=ids["<|endoftext|>"],
                              eos_token_id=ids["<|im_end|>"])
    return raw


def quantiles(contract_name: str, action_range: tuple[np.ndarray, np.ndarray] | None = None) -> dict[
        str, tuple[np.ndarray, np.ndarray]]:
    """q01 / q99 per model slot (26) for the state (the contract's limits) and the action (the limits, or
    action_range: (low, high) per contract action dimension)."""
    contract = load_contract(config_path("robots", f"{contract_name}.yaml"))
    state_lo, state_delta = contract_statistics(contract, STATE_DIM, True)
    action_lo, action_delta = action_statistics(contract, ACTION_DIM, action_range)
    return {"observation.state": (state_lo, state_lo + state_delta), "action": (action_lo, action_lo + action_delta)}


def write(out: Path, layout: str = "x-square", contract_name: str = "aloha_bimanual", seed: int = 0,
          action_range: tuple[np.ndarray, np.ndarray] | None = None) -> Path:
    """action_range: see quantiles (a narrow range around a safe pose keeps a random model's motion there)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}")
    out.mkdir(parents=True, exist_ok=True)
    processor = build_hf_processor(action_tokens=0, special_tokens=QWEN_SPECIAL)
    tok = processor.tokenizer
    raw = tiny_config({t: tok.convert_tokens_to_ids(t) for t in QWEN_SPECIAL})
    rows = len(tok) + 2  # the runtime adds <|propri|> and <|action|>; training resized the embedding so
    config = WallOss05Config.from_dict(raw).with_vocab_rows(rows)
    torch.manual_seed(seed)
    model = WallOss05ForAction(config, action_token_id=len(tok) + 1)
    reactive_init(model, seed)
    state = {k: v.contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    stats = quantiles(contract_name, action_range)
    for what, key in zip(NORMALIZERS, ("action", "observation.state"), strict=True):
        q01, q99 = stats[key]
        state[f"action_preprocessor.normalizer_{what}.min.{DATASET}"] = torch.tensor(q01, dtype=torch.float32)
        state[f"action_preprocessor.normalizer_{what}.delta.{DATASET}"] = torch.tensor(q99 - q01, dtype=torch.float32)
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    processor.save_pretrained(str(out))
    processor.image_processor.save_pretrained(str(out))  # preprocessor_config.json, as the release ships it
    tok.backend_tokenizer.model.save(str(out))  # vocab.json + merges.txt beside tokenizer.json, as Qwen's files
    assert ACTION_TOKEN not in tok.get_vocab() and PROPRI_TOKEN not in tok.get_vocab()
    if layout == "x-square":
        (out / "config.json").write_text(json.dumps(raw, indent=2))
        norm = {k: {"q01": q01.tolist(), "q99": q99.tolist()} for k, (q01, q99) in stats.items()}
        (out / "norm_stats.json").write_text(json.dumps({"norm_stats": norm}, indent=2))
        return out
    contract = load_contract(config_path("robots", f"{contract_name}.yaml"))
    cameras = {f"observation.images.{c.view.replace(' ', '_')}": c.view.replace(" ", "_") for c in contract.cameras}
    features = {"observation.state": {"type": "STATE", "shape": [STATE_DIM]},
                **{key: {"type": "VISUAL", "shape": [3, 480, 640]} for key in cameras}}
    action_feature = {"action": {"type": "ACTION", "shape": [ACTION_DIM]}}
    policy = {"type": "wall_oss_05", "pretrained_name_or_path": ".", "vlm_config": raw, "n_obs_steps": 1,
              "input_features": features, "output_features": action_feature, "camera_key_mapping": cameras,
              "chunk_size": 32, "n_action_steps": 32, "max_action_dim": ACTION_DIM, "max_state_dim": STATE_DIM,
              "num_inference_timesteps": 10, "action_branch": "flow", "normalization_mapping": NORM_MAP}
    (out / "config.json").write_text(json.dumps(policy, indent=2))
    normalizer = {"eps": 1e-8, "features": {**features, **action_feature}, "norm_map": NORM_MAP}
    pipelines = {  # the steps LeRobot's wall_oss_05 processors save, with the statistics in their state files
        "policy_preprocessor": [
            ("rename_observations_processor", {"rename_map": {}}), ("to_batch_processor", {}),
            ("wall_oss_05_task_passthrough", {}), ("wall_oss_05_pad_state", {"max_state_dim": STATE_DIM}),
            ("wall_oss_05_pad_action", {"max_action_dim": ACTION_DIM}), ("normalizer_processor", normalizer),
            ("wall_oss_05_clamp_normalized", {}), ("device_processor", {"device": "cpu", "float_dtype": None})],
        "policy_postprocessor": [
            ("unnormalizer_processor", {**normalizer, "features": action_feature}),
            ("wall_oss_05_crop_action", {"action_dim": None}), ("device_processor", {"device": "cpu",
                                                                                    "float_dtype": None})]}
    tensors = {f"{k}.{q}": torch.tensor(v, dtype=torch.float32) for k, pair in stats.items()
               for q, v in zip(("q01", "q99"), pair, strict=True)}
    for pipeline, steps in pipelines.items():
        entries = []
        for index, (registry, config) in enumerate(steps):
            entry = {"registry_name": registry, "config": config}
            if registry.endswith("normalizer_processor"):
                entry["state_file"] = f"{pipeline}_step_{index}_{registry}.safetensors"
                save_file(tensors, str(out / entry["state_file"]))
            entries.append(entry)
        (out / f"{pipeline}.json").write_text(json.dumps({"name": pipeline, "steps": entries}, indent=2))
    return out


def main(argv: list[str] | None = None) -> int:
    return run_cli(argv, __doc__, write, LAYOUTS)


if __name__ == "__main__":
    raise SystemExit(main())
