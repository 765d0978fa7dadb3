"""Which WALL-OSS model family a checkpoint directory holds, told from its files before any weight is read.

wall-oss-flow and wall-oss-fast share one architecture (shared attention projections and norms);
WALL-OSS-0.5 has per-expert fused attention and norms and takes its state as text. A 0.5 checkpoint given
to the flow code would fail on hundreds of keys after gigabytes were read, or, loaded leniently, run
with weights missing: so the family is decided from the weight names in the safetensors header (and a
LeRobot policy's "type") and the wrong one is refused by name.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import SafetensorError, safe_open

FLOW = "wall-oss-flow"  # wall-oss-flow and wall-oss-fast: the same weights, two action decoders
OSS_05 = "wall-oss-0.5"
LEROBOT_TYPES = {"wall_x": FLOW, "wall_oss_05": OSS_05}  # a LeRobot policy's config.json "type"
# Weight-name fragments only one family has (decoder layer 0 is in every checkpoint, whatever its depth).
MARKERS = {
    OSS_05: ("layers.0.self_attn.qkv_proj_experts.0.weight", "layers.0.input_layernorms.0.weight"),
    FLOW: ("layers.0.self_attn.q_proj.weight", "layers.0.input_layernorm.weight"),
}


class FamilyError(ValueError):
    """A checkpoint of another model family than the code it was given to, or of none."""


def weight_names(directory: Path) -> list[str] | None:
    """The tensor names of model.safetensors (header only) or of a sharded checkpoint's index; [] without
    either; None when they are unreadable (the loader then names the damage)."""
    single, index = directory / "model.safetensors", directory / "model.safetensors.index.json"
    try:
        if single.is_file():
            with safe_open(str(single), framework="numpy") as f:
                return list(f.keys())
        if index.is_file():
            return list(dict(json.loads(index.read_text()).get("weight_map", {})))
    except (SafetensorError, OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError, TypeError,
            ValueError):
        return None
    return []


def _lerobot_type(directory: Path) -> str | None:
    try:
        content = json.loads((directory / "config.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return content.get("type") if isinstance(content, dict) else None


def detect_family(directory: Path) -> tuple[str | None, str]:
    """(family or None when the files do not say, the evidence as a phrase)."""
    kind = _lerobot_type(directory)
    if kind in LEROBOT_TYPES:
        return LEROBOT_TYPES[kind], f'its config.json says "type": "{kind}"'
    names = weight_names(directory)
    if names is None:
        return None, "its weights are unreadable"
    for family, markers in MARKERS.items():
        found = next((n for n in names if any(n.endswith(m) for m in markers)), None)
        if found is not None:
            return family, f"it holds {found}"
    return None, "neither family's weight names were found"


def require_family(directory: Path, expected: str) -> None:
    """Refuse a checkpoint of another family, naming the family found and its evidence."""
    found, evidence = detect_family(directory)
    if found is not None and found != expected:
        raise FamilyError(f"{directory}: a {found} checkpoint ({evidence}), but this loader runs {expected} "
                          f"checkpoints; load it with wall_oss_ros.policy.loader.load_backend, which builds each "
                          "family's own backend")
