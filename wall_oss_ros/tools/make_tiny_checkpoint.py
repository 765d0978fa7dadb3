"""Write a tiny, random-weight WALL-OSS checkpoint in an official layout, offline.

It stands in for the 4B weights in tests and the demo: the same architecture, names, files and
tokenizer special tokens, at a size a CPU runs in milliseconds. Layouts (wall_oss/layouts.py):
  transformers  config.json (flat, as x-square-robot/wall-oss-flow), model.safetensors with the upstream
                normaliser keys, tokenizer and processor files
  lerobot       a wall_x policy directory over a transformers-layout base in base/, "model."-prefixed
                weights, MEAN_STD statistics in the preprocessor's normalizer safetensors
  upstream      config.yml, model.safetensors, normalizer_action.pth / normalizer_propri.pth (tensors)
  wallx-1.1     wall-x 1.1.0: nested config.yml (task:/model:/data:), config.json, tokenizer files and
                norm_stats.json (q01/q99) beside model.safetensors
The same seed gives the same weights and equivalent statistics in every layout (mean = min + delta / 2,
std = delta / 2), so all three produce the same actions.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import yaml
from safetensors.torch import save_file

from wall_oss_ros.core.contract import RobotContract, load_contract
from wall_oss_ros.core.resources import config_path
from wall_oss_ros.policy.prompts import ACTION_TOKEN, PROPRI_TOKEN, prompt
from wall_oss_ros.policy.wall_oss.checkpoint import EMBED_KEY, LM_HEAD_KEY
from wall_oss_ros.policy.wall_oss.configuration_wall_oss import WallOssConfig
from wall_oss_ros.policy.wall_oss.fast_mode import action_token
from wall_oss_ros.policy.wall_oss.fast_tokenizer import FastActionTokenizer
from wall_oss_ros.policy.wall_oss.modeling_wall_oss import WallOssForAction
from wall_oss_ros.policy.wall_oss.processor_wall_oss import SPECIAL_TOKENS
from wall_oss_ros.policy.wall_oss.size_profiles import size_config

LAYOUTS = ("transformers", "lerobot", "upstream", "wallx-1.1")
DATASET = "tiny"
TINY_HORIZON = 32
TINY_FAST_VOCAB = 512  # FAST BPE ids (the published tokenizer has 2048)


def build_hf_processor(action_tokens: int = TINY_FAST_VOCAB,
                       special_tokens: tuple[str, ...] = SPECIAL_TOKENS) -> object:
    """A byte-level BPE tokenizer trained here on prompt-like text, with Qwen's image / video processors.

    Like the WALL-OSS tokenizer it ends with `action_tokens` <|action_token_k|> tokens, whose first id is
    recorded as action_token_start_index in tokenizer_config.json (where the reference reads it); with 0,
    and Qwen's special tokens only, it is a stock Qwen2.5-VL tokenizer's stand-in (WALL-OSS-0.5 ships that)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2_5_VLProcessor, Qwen2VLImageProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    corpus = [prompt(["front view", "left wrist view", "right wrist view", "top view"], task, 4) for task in (
        "Insert the peg into the socket.", "Pick up the cube and hand it over.", "Fold the towel.",
        "Put the red block in the blue bowl.", "Open the drawer and take out the cup.")] * 4
    corpus += ["Predict the next action in language.", "0123456789 .,;:!?-+()[]{}"]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=list(special_tokens), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=[t for t in special_tokens if t not in
                                                              ("<|im_end|>", "<|endoftext|>")])
    fast.image_token, fast.video_token = "<|image_pad|>", "<|video_pad|>"
    if action_tokens:
        start = len(fast)
        fast.add_tokens([action_token(k) for k in range(action_tokens)], special_tokens=True)
        fast.init_kwargs.update(action_token_start_index=start, action_token_vocab_size=action_tokens)
    return Qwen2_5_VLProcessor(image_processor=Qwen2VLImageProcessor(), tokenizer=fast,
                               video_processor=Qwen2VLVideoProcessor())


def tiny_config(token_ids: dict[str, int], action_width: int, state_width: int) -> dict:
    """Flat config.json like wall-oss-flow's, with tiny sizes (head_dim 16: mrope sections sum to 8).

    Like the published one it has no pad_token_id, and its vocab_size (the BPE's 512) is not the
    embedding's row count (the tokenizer's length, action tokens included)."""
    raw = size_config("tiny", {"action_slots": action_width}, {
        "image_token_id": token_ids["<|image_pad|>"], "video_token_id": token_ids["<|video_pad|>"],
        "vision_start_token_id": token_ids["<|vision_start|>"], "vision_end_token_id": token_ids["<|vision_end|>"],
        "eos_token_id": token_ids["<|im_end|>"]})
    raw.update(max_position_embeddings=4096, agent_pos_config={"state_slots": state_width}, bos_token_id=None)
    for key in ("vision_token_id", "sliding_window", "max_window_layers"):
        raw.pop(key)
    return raw


def reactive_init(model: torch.nn.Module, seed: int) -> None:
    """Fan-in scaled weights, so activations keep unit scale through the layers and the chunk depends
    measurably on pixels, state and instruction (N(0, 0.05) everywhere left it near input-independent)."""
    generator = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        with torch.no_grad():
            if "norm" in name or "ln_q" in name:
                p.copy_(1.0 + 0.02 * torch.randn(p.shape, generator=generator))
            elif name.endswith("bias"):
                p.copy_(0.02 * torch.randn(p.shape, generator=generator))
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=generator))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=generator) / fan_in ** 0.5)


def fast_tokenizer(action_width: int, seed: int) -> FastActionTokenizer:
    """A tiny FAST tokenizer fitted offline on smooth normalised chunks of the contract's width."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, TINY_HORIZON)[:, None]
    chunks = [np.clip(rng.uniform(-0.6, 0.6, (1, action_width)) + rng.uniform(-0.4, 0.4, (1, action_width))
                      * np.sin(2 * np.pi * (rng.uniform(0.2, 1.5, (1, action_width)) * t
                                            + rng.uniform(0, 1, (1, action_width)))), -1.0, 1.0)
              for _ in range(400)]
    return FastActionTokenizer.fit(chunks, scale=10.0, vocab_size=TINY_FAST_VOCAB)


def contract_statistics(contract: RobotContract, width: int, state: bool) -> tuple[np.ndarray, np.ndarray]:
    """min / delta per model slot from the contract's position limits (velocities for base axes)."""
    lo, delta = np.full(width, -1.0), np.full(width, 2.0)
    for g in contract.groups:
        slots = g.state_slots if state else g.action_slots
        if not slots:
            continue
        limits = list(g.limits)[:len(slots)] if g.kind.value != "ee_pose" else [
            *g.limits[:3], *[None] * 6]
        for slot, lim in zip(slots, limits, strict=False):
            if lim is None:
                continue
            a, b = (lim.position_min, lim.position_max) if np.isfinite(lim.position_min) else (
                -lim.velocity_max, lim.velocity_max)
            lo[slot], delta[slot] = a, b - a
    return lo, delta


def action_statistics(contract: RobotContract, width: int,
                      action_range: tuple[np.ndarray, np.ndarray] | None) -> tuple[np.ndarray, np.ndarray]:
    """min / delta per action slot: the contract's limits, or (low, high) per contract action dimension."""
    lo, delta = contract_statistics(contract, width, False)
    if action_range is None:
        return lo, delta
    low, high = (np.asarray(x, dtype=float) for x in action_range)
    if low.shape != (contract.action_dim,) or high.shape != low.shape or np.any(high <= low):
        raise ValueError(f"action_range needs low < high, {contract.action_dim} values each")
    for g in contract.groups:
        cols = contract.action_slice(g)
        lo[list(g.action_slots)] = low[cols]
        delta[list(g.action_slots)] = (high - low)[cols]
    return lo, delta


def _transformers_layout(out: Path, contract: RobotContract, seed: int,
                         action_range: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, torch.Tensor]:
    """Writes the transformers layout; returns its safetensors content."""
    out.mkdir(parents=True, exist_ok=True)
    processor = build_hf_processor()
    tok = processor.tokenizer
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    raw = tiny_config(ids, contract.max_action_dim, contract.max_state_dim)
    config = WallOssConfig.from_dict(raw).with_vocab_rows(len(tok))
    torch.manual_seed(seed)
    model = WallOssForAction(config, ids[ACTION_TOKEN], ids[PROPRI_TOKEN])
    reactive_init(model, seed)
    state = {k: v.contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    for what, width, is_state in (("action", contract.max_action_dim, False), ("propri", contract.max_state_dim, True)):
        lo, delta = (contract_statistics(contract, width, is_state) if is_state else
                     action_statistics(contract, width, action_range))
        state[f"action_preprocessor.normalizer_{what}.min.{DATASET}"] = torch.tensor(lo, dtype=torch.float32)
        state[f"action_preprocessor.normalizer_{what}.delta.{DATASET}"] = torch.tensor(delta, dtype=torch.float32)
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(raw, indent=2))
    processor.save_pretrained(str(out))
    fast_tokenizer(contract.action_dim, seed).save_pretrained(out / "fast_tokenizer")
    return state


def _split_stats(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    stats = {k: state[k] for k in state if ".normalizer_" in k}
    return {k: v for k, v in state.items() if k not in stats}, stats


def write(out: Path, layout: str = "transformers", contract_name: str = "aloha_bimanual", seed: int = 0,
          action_range: tuple[np.ndarray, np.ndarray] | None = None) -> Path:
    """action_range: (low, high) per contract action dimension for the action statistics; default: the
    contract's position limits. A narrow range around a safe pose keeps a random model's motion there."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}")
    contract = load_contract(config_path("robots", f"{contract_name}.yaml"))
    if layout == "transformers":
        _transformers_layout(out, contract, seed, action_range)
        return out
    if layout == "wallx-1.1":
        _wallx_110_layout(out, contract, seed, action_range)
        return out
    base = out / "base"
    weights, stats = _split_stats(_transformers_layout(base, contract, seed, action_range))
    (base / "model.safetensors").unlink() if layout == "upstream" else None
    a_min, a_delta = (stats[f"action_preprocessor.normalizer_action.{s}.{DATASET}"] for s in ("min", "delta"))
    p_min, p_delta = (stats[f"action_preprocessor.normalizer_propri.{s}.{DATASET}"] for s in ("min", "delta"))
    if layout == "lerobot":
        # LeRobot saves with huggingface_hub.save_torch_state_dict, which keeps one name of a shared tensor:
        # lm_head.weight stays, the tied model.embed_tokens.weight is dropped.
        lerobot = {f"model.{k}": v for k, v in weights.items() if k != EMBED_KEY}
        lerobot[f"model.{LM_HEAD_KEY}"] = weights[EMBED_KEY]
        save_file(lerobot, str(out / "model.safetensors"))
        policy = {"type": "wall_x", "pretrained_name_or_path": "base", "chunk_size": 32, "n_action_steps": 32,
                  "max_action_dim": contract.max_action_dim, "max_state_dim": contract.max_state_dim,
                  "prediction_mode": "diffusion"}
        (out / "config.json").write_text(json.dumps(policy, indent=2))
        n_action, n_state = contract.action_dim, len([s for g in contract.groups for s in g.state_slots])
        normalizer = {"observation.state.mean": (p_min + p_delta / 2)[:n_state].contiguous(),
                      "observation.state.std": (p_delta / 2)[:n_state].contiguous(),
                      "action.mean": (a_min + a_delta / 2)[:n_action].contiguous(),
                      "action.std": (a_delta / 2)[:n_action].contiguous()}
        save_file(normalizer, str(out / "policy_preprocessor_step_2_normalizer_processor.safetensors"))
        (out / "policy_preprocessor.json").write_text(json.dumps({"name": "policy_preprocessor", "steps": [
            {"registry_name": "normalizer_processor",
             "state_file": "policy_preprocessor_step_2_normalizer_processor.safetensors"}]}, indent=2))
        return out
    save_file(weights, str(out / "model.safetensors"))
    (out / "qwen_config.json").write_text((base / "config.json").read_text())
    raw = json.loads((base / "config.json").read_text())
    train = {"model_type": "qwen2_5", "qwen_vl_act_config_path": "qwen_config.json", "processor_path": "base",
             "dof_config": raw["dof_config"], "agent_pos_config": raw["agent_pos_config"],
             "dataset_name": DATASET, "data": {"action_horizon_flow": 32}}
    (out / "config.yml").write_text(yaml.safe_dump(train, sort_keys=False))
    torch.save({f"min.{DATASET}": a_min, f"delta.{DATASET}": a_delta}, out / "normalizer_action.pth")
    torch.save({f"min.{DATASET}": p_min, f"delta.{DATASET}": p_delta}, out / "normalizer_propri.pth")
    return out


def _wallx_110_layout(out: Path, contract: RobotContract, seed: int,
                      action_range: tuple[np.ndarray, np.ndarray] | None) -> None:
    """wall-x 1.1.0's checkpoint: everything in one directory, statistics as q01/q99 of the dataset's dims."""
    weights, stats = _split_stats(_transformers_layout(out, contract, seed, action_range))
    save_file(weights, str(out / "model.safetensors"))
    raw = json.loads((out / "config.json").read_text())
    norm_stats = {}
    for what, key, slots in (("propri", "observation.state", [s for g in contract.groups for s in g.state_slots]),
                             ("action", "action", [s for g in contract.groups for s in g.action_slots])):
        width = max(slots) + 1
        lo = stats[f"action_preprocessor.normalizer_{what}.min.{DATASET}"][:width].double()
        delta = stats[f"action_preprocessor.normalizer_{what}.delta.{DATASET}"][:width].double()
        norm_stats[key] = {"q01": lo.tolist(), "q99": (lo + delta).tolist(), "mean": (lo + delta / 2).tolist(),
                           "std": (delta / 4).tolist()}
    (out / "norm_stats.json").write_text(json.dumps({"norm_stats": norm_stats}, indent=2))
    train = {"model_type": "qwen2_5",
             "task": {"dof_config": raw["dof_config"], "agent_pos_config": raw["agent_pos_config"],
                      "action_horizon": 32, "action_horizon_flow": 32, "use_state_string_representation": False},
             "model": {"backbone": "qwen2_5", "config_path": "config.json", "processor_path": "."},
             "data": {"dataset_type": "lerobot", "lerobot_config": {"repo_id": DATASET},
                      "norm_stats_path": "norm_stats.json"}}
    (out / "config.yml").write_text(yaml.safe_dump(train, sort_keys=False))


def run_cli(argv: list[str] | None, doc: str, writer: Callable[..., Path], layouts: tuple[str, ...]) -> int:
    """The command line of a tiny-checkpoint writer (this family's or WALL-OSS-0.5's)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--layout", choices=layouts, default=layouts[0])
    parser.add_argument("--contract", default="aloha_bimanual", help="robot contract sizing the statistics")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(writer(args.out, args.layout, args.contract, args.seed))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(argv, __doc__, write, LAYOUTS)


if __name__ == "__main__":
    raise SystemExit(main())
