"""Observation → model inputs the way the reference builds them; normalised actions → robot units.

Prompt: policy/prompts.py (LeRobot wall_x utils.get_wallx_normal_text, action mode, no FAST tokens).
Images: long side resized to 256, then Qwen's smart_resize (factor 28, 4·28² … 16384·28² pixels), bicubic
with antialias, by torchvision's v2 functional.resize on the uint8 tensor as LeRobot does (the v1 function
gives other pixels for the same frame). The instruction is used as given, with a full stop appended when it
has none (LeRobot's WallXTaskProcessor); it is not stripped.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as tvf
from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

from wall_oss_ros.core.contract import GroupKind, RobotContract
from wall_oss_ros.policy.backend import Observation
from wall_oss_ros.policy.prompts import ACTION_TOKEN, PROPRI_TOKEN, generation_prompt, language_prompt, prompt
from wall_oss_ros.policy.wall_oss.modeling_wall_oss import ModelInputs
from wall_oss_ros.policy.wall_oss.normalization import Normalizer

RESOLUTION = 256
IMAGE_FACTOR = 28
MIN_PIXELS = 4 * 28 * 28
MAX_PIXELS = 16384 * 28 * 28
SPECIAL_TOKENS = ("<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
                  "<|video_pad|>", PROPRI_TOKEN, ACTION_TOKEN, "<|action_fast|>", "<|endoftext|>")


class ObservationError(ValueError):
    """An observation the policy cannot use; the message names the field."""


def resize_dimensions(height: int, width: int) -> tuple[int, int, int, int]:
    """(intermediate H, W, final H, W): long side to 256, then Qwen's smart_resize."""
    if width > height:
        ih, iw = int(RESOLUTION * height / width), RESOLUTION
    else:
        ih, iw = RESOLUTION, int(RESOLUTION * width / height)
    rh, rw = smart_resize(ih, iw, factor=IMAGE_FACTOR, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    return ih, iw, rh, rw


def resize_image(image: torch.Tensor) -> torch.Tensor:
    """C×H×W uint8 → the size the model sees."""
    ih, iw, rh, rw = resize_dimensions(int(image.shape[-2]), int(image.shape[-1]))
    for size in ((ih, iw), (rh, rw)):
        if tuple(image.shape[-2:]) != size:
            image = tvf.resize(image, list(size), interpolation=InterpolationMode.BICUBIC, antialias=True)
    return image


def state_slots(contract: RobotContract) -> list[tuple[int, str]]:
    """(model state slot, contract action name) of every proprioceptive value the contract maps."""
    slots = []
    for g in contract.groups:
        if g.kind is GroupKind.BASE_TWIST:
            continue
        slots += list(zip(g.state_slots, g.action_names, strict=True))
    return slots


class WallOssProcessor:
    def __init__(self, hf_processor: object, contract: RobotContract, normalizer: Normalizer, horizon: int,
                 max_state_dim: int, max_action_dim: int) -> None:
        self.hf = hf_processor
        self.tokenizer = hf_processor.tokenizer
        self.contract, self.normalizer, self.horizon = contract, normalizer, horizon
        self.max_state_dim, self.max_action_dim = max_state_dim, max_action_dim
        self.views = [c.view for c in contract.cameras]
        self.merge = int(hf_processor.image_processor.merge_size) ** 2
        self.state_index = np.array([s for s, _ in state_slots(contract)], dtype=int)
        self.state_names = tuple(n for _, n in state_slots(contract))
        self.action_index = np.array([s for g in contract.groups for s in g.action_slots], dtype=int)
        for name, index, width in (("state", self.state_index, max_state_dim),
                                   ("action", self.action_index, max_action_dim)):
            if len(index) and int(index.max()) >= width:
                raise ValueError(f"contract {contract.name} maps a {name} slot {int(index.max())} beyond the "
                                 f"checkpoint's {width}")
        missing = [t for t in (ACTION_TOKEN, PROPRI_TOKEN, "<|image_pad|>")
                   if self.tokenizer.convert_tokens_to_ids(t) in (None, self.tokenizer.unk_token_id)]
        if missing:
            raise ValueError(f"tokenizer lacks the special tokens {missing}")

    def checked_state(self, state: np.ndarray) -> np.ndarray:
        """The contract's state values as floats, or an ObservationError naming the first bad ones."""
        state = np.asarray(state, dtype=float)
        if state.shape != (len(self.state_index),):
            raise ObservationError(f"state: {state.shape[0] if state.ndim == 1 else state.shape} values, the "
                                   f"contract maps {len(self.state_index)} ({', '.join(self.state_names[:3])}, …)")
        bad = [self.state_names[i] for i in np.flatnonzero(~np.isfinite(state))]
        if bad:  # a robot's joint reading that is not finite is a sensor fault, not a value to mask
            raise ObservationError(f"state: not finite for {bad[:4]}")
        return state

    def checked_images(self, obs: Observation) -> list[np.ndarray]:
        """The contract's cameras' frames in order, each H×W×3 uint8, or an ObservationError naming it."""
        out = []
        for cam in self.contract.cameras:
            if cam.name not in obs.images:
                raise ObservationError(f"images: camera {cam.name!r} is missing (have {sorted(obs.images)})")
            img = np.asarray(obs.images[cam.name])
            if img.dtype != np.uint8:
                raise ObservationError(f"images[{cam.name!r}]: dtype {img.dtype}, expected uint8 RGB")
            if img.ndim != 3 or img.shape[2] != 3 or min(img.shape[:2]) < 1:
                raise ObservationError(f"images[{cam.name!r}]: shape {img.shape}, expected H×W×3")
            out.append(np.ascontiguousarray(img))
        return out

    def images(self, obs: Observation) -> list[torch.Tensor]:
        return [resize_image(torch.from_numpy(img).permute(2, 0, 1)) for img in self.checked_images(obs)]

    @staticmethod
    def instruction(obs: Observation) -> str:
        """LeRobot's form: as given, plus a full stop. An empty or blank task is refused here (LeRobot would
        prompt with it, or with "Execute the robot action." for None): a robot without a task should not move."""
        instruction = obs.instruction or ""
        if not instruction.strip():
            raise ObservationError("instruction: empty; the policy needs a task description")
        return instruction if instruction.endswith(".") else instruction + "."

    def _tokens(self, text: str, grid: torch.Tensor) -> dict:
        for thw in grid:
            text = text.replace("<|image_pad|>", "<|placeholder|>" * int(thw.prod() // self.merge), 1)
        return self.tokenizer(text.replace("<|placeholder|>", "<|image_pad|>"), return_tensors="pt",
                              add_special_tokens=False)

    def language_inputs(self, obs: Observation) -> ModelInputs:
        """Inputs of the subtask prompt (images and instruction; no state, no action tokens)."""
        vision = self.hf.image_processor(images=self.images(obs), return_tensors="pt")
        tokens = self._tokens(language_prompt(self.views, self.instruction(obs)), vision["image_grid_thw"])
        empty = torch.zeros(1, 0, self.max_state_dim)
        return ModelInputs(tokens["input_ids"], tokens["attention_mask"], vision["pixel_values"],
                           vision["image_grid_thw"], empty, empty, torch.zeros(1, 0, self.max_action_dim))

    def __call__(self, obs: Observation, action_tokens: bool = True) -> ModelInputs:
        """action_tokens False: the prompt ends at the assistant's turn (FAST generation)."""
        instruction = self.instruction(obs)
        state = self.checked_state(obs.state)
        slots = np.zeros(self.max_state_dim)
        mask = np.zeros(self.max_state_dim)
        slots[self.state_index] = state
        mask[self.state_index] = 1.0
        slots = np.where(mask > 0, self.normalizer.state.normalize(slots), 0.0)
        images = self.images(obs)
        vision = self.hf.image_processor(images=images, return_tensors="pt")
        grid = vision["image_grid_thw"]
        text = prompt(self.views, instruction, self.horizon) if action_tokens else generation_prompt(self.views,
                                                                                                     instruction)
        tokens = self._tokens(text, grid)
        dof = torch.zeros(1, self.horizon, self.max_action_dim)
        dof[:, :, torch.from_numpy(self.action_index)] = 1.0
        return ModelInputs(
            input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"],
            pixel_values=vision["pixel_values"], image_grid_thw=grid,
            proprio=torch.tensor(slots, dtype=torch.float32)[None, None],
            proprio_mask=torch.tensor(mask, dtype=torch.float32)[None, None], dof_mask=dof)

    def normalized_actions(self, actions: np.ndarray) -> np.ndarray:
        """Inverse of actions(): (K, D) robot units → (K, max_action_dim) normalised model space."""
        slots = np.zeros((len(actions), self.max_action_dim))
        slots[:, self.action_index] = actions
        return self.normalizer.action.normalize(slots)

    def actions(self, normalized: np.ndarray) -> np.ndarray:
        """(H, max_action_dim) normalised model output → (H, D) robot units in contract action order."""
        return self.normalizer.action.unnormalize(normalized)[:, self.action_index]
