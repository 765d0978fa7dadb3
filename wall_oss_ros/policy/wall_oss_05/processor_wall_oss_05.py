"""WALL-OSS-0.5's observation encoding where it differs from the flow family: the state as prompt text, and
images scaled to a long side of 448 before Qwen's image processor.

State → text, as the model was trained: each state slot normalised with the dataset's 1st/99th percentiles
to [-1, 1] and clipped, digitised into 512 equal bins over [-1, 1] (bin k starts at -1 + k/256; -1 is bin
0, 0 is bin 256, 1 and above fall in bin 511), the bin numbers joined by single spaces in slot order, in
place of <|propri|> (policy/prompts.py). Which slots are written is the caller's mask: the robot's active
slots (wall-x) or all of them (LeRobot's port writes every slot of the padded 26).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from wall_oss_ros.core.contract import RobotContract
from wall_oss_ros.core.contract.view_names import KNOWN_VIEWS, LEROBOT_IMAGE_PREFIX
from wall_oss_ros.policy.backend import Observation
from wall_oss_ros.policy.prompts import language_prompt, prompt
from wall_oss_ros.policy.wall_oss.normalization import Normalizer
from wall_oss_ros.policy.wall_oss.processor_wall_oss import ObservationError, WallOssProcessor
from wall_oss_ros.policy.wall_oss_05.configuration_wall_oss_05 import ACTION_DIM, STATE_DIM
from wall_oss_ros.policy.wall_oss_05.modeling_wall_oss_05 import Inputs05

STATE_BINS = 512
BIN_EDGES = np.linspace(-1.0, 1.0, STATE_BINS + 1)[:-1]  # left edges
QUANTILE_EPS = 1e-8  # the span used where q99 == q01 (a constant slot)
IMAGE_LONG_SIDE = 448  # [px] before Qwen's smart_resize
STATE_SLOT_MODES = ("all", "active")


def normalize_quantiles(state: np.ndarray, q01: np.ndarray, q99: np.ndarray) -> np.ndarray:
    """2 (x - q01) / (q99 - q01) - 1, clipped to [-1, 1]."""
    span = np.where(q99 == q01, QUANTILE_EPS, q99 - q01)
    return np.clip(2.0 * (np.asarray(state, float) - q01) / span - 1.0, -1.0, 1.0)


def state_bins(normalized: np.ndarray) -> np.ndarray:
    """Bin numbers 0…511 of normalised state values (outside [-1, 1]: the end bins, as after clipping)."""
    values = np.asarray(normalized, float)
    if not np.all(np.isfinite(values)):
        bad = np.flatnonzero(~np.isfinite(values)).tolist()
        raise ValueError(f"state slots {bad} are not finite: no bin to write")
    return np.digitize(np.clip(values, -1.0, 1.0), BIN_EDGES) - 1


def state_text(bins: np.ndarray, active: np.ndarray | None = None) -> str:
    """The bin numbers of the active slots (all when no mask), space-separated."""
    chosen = np.asarray(bins) if active is None else np.asarray(bins)[np.asarray(active, bool)]
    return " ".join(str(int(b)) for b in chosen)


def flow_prompt(views: list[str], instruction: str, horizon: int, state: str) -> str:
    """The 0.5 flow prompt: the flow family's turns with the state text where <|propri|> stands."""
    return prompt(views, instruction, horizon, proprioception=state)


def long_side_size(width: int, height: int, target: int = IMAGE_LONG_SIDE) -> tuple[int, int]:
    """(width, height) with the long side at `target`, the other scaled and truncated to whole pixels."""
    if width > height:
        return target, int(target * height / width)
    return int(target * width / height), target


def camera_label(camera: str) -> str:
    """The prompt's name of a LeRobot camera key, as the release labels it ('face_view' → 'front view',
    others with '_' as spaces: 'top' stays 'top')."""
    key = camera.removeprefix(LEROBOT_IMAGE_PREFIX)
    return KNOWN_VIEWS.get(key, key.replace("_", " "))


def resize_long_side(image: np.ndarray) -> Image.Image:
    """H×W×3 uint8 → a PIL image with the long side at 448 (PIL's default resampling, as the release)."""
    height, width = image.shape[:2]
    picture = Image.fromarray(image)
    size = long_side_size(width, height)
    return picture if size == (width, height) else picture.resize(size)


class WallOss05Processor(WallOssProcessor):
    """Observation → Inputs05 the way the release builds them; normalised actions → robot units (inherited).

    The instruction is used as given (no full stop appended). State slots without a contract value are
    zero before normalisation, as LeRobot pads; `state_slots` "all" writes every one of the 26 (LeRobot's
    port), "active" only the contract's (wall-x drops masked slots from the text)."""

    def __init__(self, hf_processor: object, contract: RobotContract, normalizer: Normalizer, horizon: int,
                 state_slots: str = "all") -> None:
        super().__init__(hf_processor, contract, normalizer, horizon, STATE_DIM, ACTION_DIM)
        if state_slots not in STATE_SLOT_MODES:
            raise ValueError(f"state_slots must be one of {STATE_SLOT_MODES}, got {state_slots!r}")
        self.state_slots = state_slots

    def images(self, obs: Observation) -> list[Image.Image]:
        return [resize_long_side(img) for img in self.checked_images(obs)]

    @staticmethod
    def instruction(obs: Observation) -> str:
        instruction = obs.instruction or ""
        if not instruction.strip():
            raise ObservationError("instruction: empty; the policy needs a task description")
        return instruction

    def state_string(self, state: np.ndarray) -> str:
        """The state's text: contract values into their slots, zero elsewhere, normalised, binned."""
        slots = np.zeros(STATE_DIM)
        slots[self.state_index] = self.checked_state(state)
        active = None
        if self.state_slots == "active":
            active = np.zeros(STATE_DIM, dtype=bool)
            active[self.state_index] = True
        return state_text(state_bins(self.normalizer.state.normalize(slots)), active)

    def _inputs(self, text: str, images: list[Image.Image], dof: torch.Tensor) -> Inputs05:
        vision = self.hf.image_processor(images=images, return_tensors="pt")
        tokens = self._tokens(text, vision["image_grid_thw"])
        return Inputs05(tokens["input_ids"], tokens["attention_mask"], vision["pixel_values"],
                        vision["image_grid_thw"], dof)

    def __call__(self, obs: Observation, action_tokens: bool = True) -> Inputs05:
        if not action_tokens:
            raise ValueError("WALL-OSS-0.5 publishes the flow branch only (no FAST action tokens)")
        text = flow_prompt(self.views, self.instruction(obs), self.horizon, self.state_string(obs.state))
        return self._inputs(text, self.images(obs), torch.ones(1, self.horizon, ACTION_DIM))

    def language_inputs(self, obs: Observation) -> Inputs05:
        """The subtask (Uni-CoT) prompt: images and instruction, no state, no action tokens."""
        return self._inputs(language_prompt(self.views, self.instruction(obs)), self.images(obs),
                            torch.zeros(1, 0, ACTION_DIM))
