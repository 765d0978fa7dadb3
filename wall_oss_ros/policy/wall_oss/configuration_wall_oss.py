"""WALL-OSS configuration from a checkpoint's config.json (flat wall-oss-flow layout or nested)."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Self

from transformers.models.qwen2_5_vl.configuration_qwen2_5_vl import Qwen2_5_VLTextConfig, Qwen2_5_VLVisionConfig

from wall_oss_ros.policy.wall_oss.config_fields import VISION_ALIASES, refused_fields

# Text-model fields of the flat layout (the official checkpoints keep them at the top level).
TEXT_FIELDS = (
    "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "hidden_act", "max_position_embeddings", "rms_norm_eps", "attention_dropout",
    "initializer_range", "use_sliding_window", "sliding_window", "max_window_layers", "layer_types",
    "bos_token_id", "eos_token_id", "pad_token_id",
)
VISION_FIELDS = (
    "depth", "hidden_size", "intermediate_size", "num_heads", "out_hidden_size", "patch_size",
    "spatial_merge_size", "temporal_patch_size", "window_size", "fullatt_block_indexes", "in_channels",
    "tokens_per_second", "hidden_act",
)


class ConfigError(ValueError):
    """A checkpoint configuration is missing a field or holds an inconsistent one."""


def need(container: dict[str, Any], key: str, source: str, where: str = "") -> Any:
    if key not in container:
        raise ConfigError(f"{source}: {where}{key} is missing")
    return container[key]


def backbone(raw: dict[str, Any], source: str) -> tuple[Qwen2_5_VLTextConfig, Qwen2_5_VLVisionConfig, dict[str, Any]]:
    """The Qwen2.5-VL text and vision configurations of a config mapping (flat or nested), checked; and the
    text fields as given (both WALL-OSS families keep their extra fields beside them)."""
    text_raw = dict(raw.get("text_config") or {})
    for key in TEXT_FIELDS:  # flat layout: text fields at the top level
        if key in raw and key not in text_raw:
            text_raw[key] = raw[key]
    for key in ("num_hidden_layers", "hidden_size", "num_attention_heads", "vocab_size", "intermediate_size"):
        need(text_raw, key, source, "text ")
    rope = raw.get("rope_scaling") or text_raw.get("rope_scaling") or {}
    rope_params = dict(text_raw.pop("rope_parameters", None) or raw.get("rope_parameters") or {})
    rope_params.setdefault("rope_type", "default")
    rope_params.setdefault("rope_theta", float(raw.get("rope_theta", text_raw.get("rope_theta", 1e6))))
    if "mrope_section" in rope:
        rope_params["mrope_section"] = list(rope["mrope_section"])
    text_raw.pop("rope_scaling", None)
    text_raw.pop("rope_theta", None)
    head_dim = int(text_raw["hidden_size"]) // int(text_raw["num_attention_heads"])
    declared_head_dim = raw.get("head_dim", text_raw.get("head_dim"))
    if declared_head_dim is not None and int(declared_head_dim) != head_dim:
        raise ConfigError(f"{source}: head_dim {declared_head_dim} != hidden_size / num_attention_heads "
                          f"= {head_dim} (Qwen2.5-VL attention derives it)")
    sections = rope_params.get("mrope_section")
    if sections is None or 2 * sum(sections) != head_dim:
        raise ConfigError(f"{source}: rope_scaling.mrope_section {sections} must sum to head_dim / 2 "
                          f"= {head_dim // 2}")
    known = {k: v for k, v in text_raw.items() if k in TEXT_FIELDS}
    text = Qwen2_5_VLTextConfig(**known, rope_parameters=rope_params)
    text._attn_implementation = "sdpa"
    vision_raw = need(raw, "vision_config", source)
    vision_raw = dict(vision_raw)
    for legacy, name in VISION_ALIASES.items():  # Qwen2-VL spellings, checked to agree by refused_fields
        if legacy in vision_raw and name not in vision_raw and name != "hidden_size":
            vision_raw[name] = vision_raw[legacy]
    vision = Qwen2_5_VLVisionConfig(**{k: v for k, v in vision_raw.items() if k in VISION_FIELDS})
    vision._attn_implementation = "sdpa"
    if int(vision.out_hidden_size) != int(text.hidden_size):
        raise ConfigError(f"{source}: vision_config.out_hidden_size {vision.out_hidden_size} != hidden_size "
                          f"{text.hidden_size}")
    return text, vision, text_raw


class CheckpointConfig:
    """What both families' configurations do alike: validate a mapping (every problem a ConfigError), read
    config.json, resize the embedding to the checkpoint's rows. Subclasses are frozen dataclasses with a
    `text` field and a `_from_dict(raw, source)` constructor."""

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "config.json") -> Self:
        """Validate a config mapping; every problem (missing key, wrong type, inconsistent sizes) is a ConfigError."""
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: expected a mapping, got {type(raw).__name__}")
        try:
            return cls._from_dict(raw, source)
        except ConfigError:
            raise
        except Exception as exc:  # transformers' own config classes validate with errors of their own
            raise ConfigError(f"{source}: invalid value ({type(exc).__name__}: {exc})") from exc

    @classmethod
    def from_file(cls, path: str | Path) -> Self:
        path = Path(path)
        try:
            raw = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read ({exc})") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a JSON object")
        return cls.from_dict(raw, str(path))

    def with_vocab_rows(self, rows: int) -> Self:
        """The same architecture with the embedding sized as the checkpoint stores it."""
        text = copy.deepcopy(self.text)
        text.vocab_size = int(rows)
        return replace(self, text=text)


@dataclass(frozen=True)
class WallOssConfig(CheckpointConfig):
    text: Qwen2_5_VLTextConfig
    vision: Qwen2_5_VLVisionConfig
    num_experts: int
    experts: tuple[dict[str, Any], ...]  # per expert: hidden_size, intermediate_size, hidden_act
    dim_inputs: tuple[int, ...]  # per expert: leading hidden features it reads and writes
    dof_config: dict[str, int]  # named action slots → width; action_dim = their sum
    agent_pos_config: dict[str, int]  # named proprioception slots → width
    image_token_id: int
    video_token_id: int
    vision_start_token_id: int
    tie_word_embeddings: bool
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @property
    def hidden_size(self) -> int:
        return int(self.text.hidden_size)

    @property
    def action_dim(self) -> int:
        return sum(self.dof_config.values())

    @property
    def propri_dim(self) -> int:
        return sum(self.agent_pos_config.values())

    @classmethod
    def _from_dict(cls, raw: dict[str, Any], source: str) -> WallOssConfig:
        refused = refused_fields(raw)
        if refused:
            raise ConfigError(f"{source}: " + "; ".join(refused))
        text, vision, text_raw = backbone(raw, source)
        extra = {**text_raw, **raw}
        num_experts = int(need(extra, "num_experts", source))
        experts = tuple(dict(e) for e in need(extra, "experts", source))
        dim_inputs = tuple(int(d) for d in extra.get("dim_inputs", [text.hidden_size] * num_experts))
        if len(experts) != num_experts or len(dim_inputs) != num_experts:
            raise ConfigError(f"{source}: num_experts {num_experts} but {len(experts)} experts and "
                              f"{len(dim_inputs)} dim_inputs")
        for i, (e, d) in enumerate(zip(experts, dim_inputs, strict=True)):
            if int(e.get("hidden_size", -1)) != d or d > text.hidden_size:
                raise ConfigError(f"{source}: experts[{i}].hidden_size {e.get('hidden_size')} must equal "
                                  f"dim_inputs[{i}] = {d} (≤ hidden_size)")
        dof = {str(k): int(v) for k, v in need(extra, "dof_config", source).items()}
        propri = {str(k): int(v) for k, v in (extra.get("agent_pos_config") or dof).items()}
        return cls(text, vision, num_experts, experts, dim_inputs, dof, propri,
                   int(raw.get("image_token_id", 151655)), int(raw.get("video_token_id", 151656)),
                   int(raw.get("vision_start_token_id", 151652)), bool(raw.get("tie_word_embeddings", True)), raw)
