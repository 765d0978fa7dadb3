"""WALL-OSS-0.5 configuration: the author's config.json (x-square-robot/wall-oss-0.5), also found as the
`vlm_config` of a LeRobot `wall_oss_05` policy (lerobot/wall-oss-0.5).

A Qwen2.5-VL configuration (text and vision, flat or nested) plus the 0.5 fields: two experts, each with its
own width (`dim_inputs`, the action expert narrower than the model), `action_hidden_size` (the action head's
width, the action expert's), and the flow's `noise_scheduler` (`s`: the last time integrated to; `time_shift`).
The action and state spaces are 26 wide, fixed by the release.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from transformers.models.qwen2_5_vl.configuration_qwen2_5_vl import Qwen2_5_VLTextConfig, Qwen2_5_VLVisionConfig

from wall_oss_ros.policy.wall_oss.configuration_wall_oss import CheckpointConfig, ConfigError, backbone, need

ACTION_DIM = 26  # the release's action space (and state space): robots narrower than it are zero-padded
STATE_DIM = 26
NUM_EXPERTS = 2  # expert 0: the vision-language model; expert 1: the action expert (<|action|> tokens only)
DENOISING_STEPS = 10  # the release samples with exactly these Euler steps (LeRobot refuses any other number)


@dataclass(frozen=True)
class WallOss05Config(CheckpointConfig):
    text: Qwen2_5_VLTextConfig
    vision: Qwen2_5_VLVisionConfig
    experts: tuple[dict[str, Any], ...]  # per expert: hidden_size, intermediate_size
    dim_inputs: tuple[int, ...]  # per expert: leading residual features it reads and writes
    action_hidden_size: int  # action head width (= the action expert's)
    noise_s: float  # integration ends at t = s (times are linspace(0, 1, N + 1) · s)
    time_shift: float  # 1: no shift; else t ← shift · t / (1 + (shift − 1) · t)
    image_token_id: int
    vision_start_token_id: int
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    action_dim = ACTION_DIM
    state_dim = STATE_DIM

    @property
    def hidden_size(self) -> int:
        return int(self.text.hidden_size)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // int(self.text.num_attention_heads)

    @classmethod
    def _from_dict(cls, raw: dict[str, Any], source: str) -> WallOss05Config:
        text, vision, text_raw = backbone(raw, source)
        extra = {**text_raw, **raw}
        experts = tuple(dict(e) for e in need(extra, "experts", source))
        dim_inputs = tuple(int(d) for d in need(extra, "dim_inputs", source))
        if len(experts) != NUM_EXPERTS or len(dim_inputs) != NUM_EXPERTS:
            raise ConfigError(f"{source}: WALL-OSS-0.5 has {NUM_EXPERTS} experts; experts has {len(experts)}, "
                              f"dim_inputs {len(dim_inputs)}")
        for i, (e, d) in enumerate(zip(experts, dim_inputs, strict=True)):
            if int(e.get("hidden_size", -1)) != d or not 0 < d <= text.hidden_size:
                raise ConfigError(f"{source}: experts[{i}].hidden_size {e.get('hidden_size')} must equal "
                                  f"dim_inputs[{i}] = {d} (≤ hidden_size {text.hidden_size})")
            if int(e.get("intermediate_size", 0)) < 1:
                raise ConfigError(f"{source}: experts[{i}].intermediate_size is missing")
        if dim_inputs[0] != text.hidden_size:
            raise ConfigError(f"{source}: dim_inputs[0] {dim_inputs[0]} must be the model's hidden_size "
                              f"{text.hidden_size} (expert 0 is the vision-language model)")
        action_hidden = int(need(extra, "action_hidden_size", source))
        if action_hidden != dim_inputs[1]:
            raise ConfigError(f"{source}: action_hidden_size {action_hidden} must equal dim_inputs[1] "
                              f"{dim_inputs[1]} (the head reads the action expert's features)")
        scheduler = dict(extra.get("noise_scheduler") or {})
        noise_s, shift = float(scheduler.get("s", 0.999)), float(scheduler.get("time_shift", 1.0))
        if not 0.0 < noise_s <= 1.0 or shift <= 0.0:
            raise ConfigError(f"{source}: noise_scheduler s={noise_s} must be in (0, 1] and time_shift={shift} > 0")
        return cls(text, vision, experts, dim_inputs, action_hidden, noise_s, shift,
                   int(raw.get("image_token_id", 151655)), int(raw.get("vision_start_token_id", 151652)), raw)
