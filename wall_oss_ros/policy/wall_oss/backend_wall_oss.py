"""WALL-OSS as a PolicyBackend: checkpoint → processor + model → chunks in robot units."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import numpy as np
import torch

from wall_oss_ros.core.chunk import relative_values
from wall_oss_ros.core.contract import RobotContract
from wall_oss_ros.policy.backend import ChunkResult, Observation, RtcRequest
from wall_oss_ros.policy.prompts import ACTION_TOKEN, PROPRI_TOKEN
from wall_oss_ros.policy.rtc import RtcConfig, RtcGuide, prefix_weights
from wall_oss_ros.policy.wall_oss.checkpoint import (
    CheckpointError,
    embedded_stats,
    load_weights,
    split_normalizer,
    vocab_rows,
)
from wall_oss_ros.policy.wall_oss.configuration_wall_oss import WallOssConfig
from wall_oss_ros.policy.wall_oss.fast_mode import (
    DEFAULT_FAST_MAX_TOKENS,
    PREDICTION_MODES,
    FastVocabulary,
    decode_chunk,
)
from wall_oss_ros.policy.wall_oss.fast_tokenizer import FastActionTokenizer, FastDecodeError
from wall_oss_ros.policy.wall_oss.layouts import ResolvedCheckpoint, resolve
from wall_oss_ros.policy.wall_oss.modeling_wall_oss import ModelInputs, WallOssForAction
from wall_oss_ros.policy.wall_oss.normalization import Normalizer, SlotStats
from wall_oss_ros.policy.wall_oss.processor_wall_oss import WallOssProcessor

DEFAULT_HORIZON = 32  # <|action|> tokens per chunk in the official checkpoints (LeRobot chunk_size)


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


DTYPES = {"bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float32": torch.float32, "fp32": torch.float32}


def torch_dtype(name: str) -> torch.dtype | None:
    """A dtype parameter's value; empty: the device's default (None)."""
    if not name:
        return None
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)} or empty, got {name!r}")
    return DTYPES[name]


def cast_for_device(model: WallOssForAction, device: str, dtype: torch.dtype | None) -> torch.dtype:
    """bf16 on CUDA with the layernorms and the action head in fp32 (as the reference runs); fp32 on CPU."""
    dtype = dtype or (torch.bfloat16 if device.startswith("cuda") else torch.float32)
    model.to(device=device, dtype=dtype)
    if dtype != torch.float32:
        for name, param in model.named_parameters():
            if "layernorm" in name or name.startswith("model.norm") or name.startswith("action_preprocessor"):
                param.data = param.data.float()
    return dtype


def checkpoint_directory(checkpoint: str | Path, cpu_threads: int = 0) -> Path:
    """The checkpoint directory, which must exist; cpu_threads > 0 sets torch's intra-op threads first (on a
    small CPU, leave cores to the executor and drivers)."""
    if cpu_threads > 0:
        torch.set_num_threads(int(cpu_threads))
    directory = Path(checkpoint)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: checkpoint directory not found")
    return directory


def check_trained_inputs(resolved: ResolvedCheckpoint, processor: WallOssProcessor, directory: Path) -> None:
    """A LeRobot policy records the cameras and dims it was fine-tuned with: the contract must feed the same
    (another view name or slot order would prompt the model with inputs it never saw, silently)."""
    if resolved.trained_views is not None and list(resolved.trained_views) != list(processor.views):
        raise CheckpointError(f"{directory}: the policy was fine-tuned with the views {resolved.trained_views}; the "
                              f"contract's cameras give {processor.views} (name the cameras like the dataset's "
                              "image keys, or set their view)")
    for what, width, slots in (("state", resolved.trained_state_dims, processor.state_index),
                               ("action", resolved.trained_action_dims, processor.action_index)):
        if width is not None and sorted(int(s) for s in slots) != list(range(width)):
            raise CheckpointError(f"{directory}: the dataset's {width} {what} dimensions fill model slots "
                                  f"0..{width - 1}; the contract maps slots {sorted(int(s) for s in slots)}")


class WallOssBackend:
    def __init__(self, checkpoint: str | Path, contract: RobotContract, device: str | None = None,
                 dtype: torch.dtype | None = None, denoising_steps: int = 10, use_prefix_cache: bool = True,
                 seed: int = 0, dataset: str | None = None, horizon: int | None = None,
                 rtc: RtcConfig | None = None, subtask_max_tokens: int = 0, compile_backend: str | None = None,
                 compile_mode: str | None = None, cpu_threads: int = 0, prediction_mode: str | None = None,
                 fast_tokenizer: str | Path | None = None, fast_max_tokens: int = DEFAULT_FAST_MAX_TOKENS) -> None:
        """prediction_mode: flow | fast; None takes the checkpoint's (a LeRobot policy's prediction_mode, else
        flow). fast_tokenizer: the FAST files; None: the checkpoint's fast_tokenizer/ directory."""
        from transformers import AutoProcessor

        directory = checkpoint_directory(checkpoint, cpu_threads)
        resolved = resolve(directory, contract.max_state_dim, contract.max_action_dim, dataset)
        self.layout = resolved.layout
        self.config = WallOssConfig.from_dict(resolved.config, str(directory))
        self._settings(contract, horizon or resolved.horizon, denoising_steps, use_prefix_cache, rtc,
                       subtask_max_tokens, seed)
        self.prediction_mode = prediction_mode or resolved.prediction_mode or "flow"
        if self.prediction_mode not in PREDICTION_MODES:
            raise ValueError(f"prediction_mode must be one of {PREDICTION_MODES}, got {self.prediction_mode!r}")
        self.fast_max_tokens = int(fast_max_tokens)
        hf = AutoProcessor.from_pretrained(str(resolved.processor_dir), local_files_only=True)
        tok = hf.tokenizer
        state = resolved.state
        found = split_normalizer(state)
        stats = resolved.stats or embedded_stats(found, resolved.dataset, contract.max_state_dim,
                                                 contract.max_action_dim, str(directory))
        if self.config.action_dim != contract.max_action_dim or self.config.propri_dim != contract.max_state_dim:
            raise CheckpointError(f"{directory}: model action/state width {self.config.action_dim}/"
                                  f"{self.config.propri_dim} != contract {contract.name} "
                                  f"{contract.max_action_dim}/{contract.max_state_dim}")
        state_stats, action_stats = stats or (SlotStats.identity(contract.max_state_dim),
                                              SlotStats.identity(contract.max_action_dim))
        self.normalizer = Normalizer(state_stats, action_stats)
        rows = vocab_rows(state, str(directory))
        if rows < len(tok):
            raise CheckpointError(f"{directory}: the embedding has {rows} rows but the tokenizer {len(tok)} tokens "
                                  "(upstream resizes the embedding to the tokenizer's length)")
        self.config = self.config.with_vocab_rows(rows)
        self.model = WallOssForAction(self.config, tok.convert_tokens_to_ids(ACTION_TOKEN),
                                      tok.convert_tokens_to_ids(PROPRI_TOKEN))
        load_weights(self.model, state, str(directory))
        self._place(device, dtype, compile_backend, compile_mode)
        self.processor = WallOssProcessor(hf, contract, self.normalizer, self.horizon, contract.max_state_dim,
                                          contract.max_action_dim)
        check_trained_inputs(resolved, self.processor, directory)
        self.fast = self.fast_vocabulary = None
        if self.prediction_mode == "fast":
            path = Path(fast_tokenizer) if fast_tokenizer else directory / "fast_tokenizer"
            if not path.is_dir():
                raise CheckpointError(f"{directory}: prediction_mode fast needs the FAST tokenizer files; {path} "
                                      "is not a directory (give fast_tokenizer)")
            self.fast = FastActionTokenizer.from_pretrained(path)
            self.fast_vocabulary = FastVocabulary.from_tokenizer(tok, self.fast)

    def _settings(self, contract: RobotContract, horizon: int | None, denoising_steps: int, use_prefix_cache: bool,
                  rtc: RtcConfig | None, subtask_max_tokens: int, seed: int) -> None:
        """What both families' backends hold alike: the run's settings, the inference lock, the noise stream."""
        self.contract, self.dt_s = contract, contract.dt_s
        self.horizon = int(horizon or DEFAULT_HORIZON)
        self.denoising_steps, self.use_prefix_cache = int(denoising_steps), use_prefix_cache
        if self.denoising_steps < 1:
            raise ValueError("denoising_steps must be at least 1")
        self.rtc_config = rtc or RtcConfig()
        self.subtask_max_tokens = int(subtask_max_tokens)  # 0: no Uni-CoT subtask generation
        self._lock = threading.Lock()
        self.seed = int(seed)
        self._generator = torch.Generator(device="cpu").manual_seed(seed)

    def _place(self, device: str | None, dtype: torch.dtype | None, compile_backend: str | None,
               compile_mode: str | None) -> None:
        """The loaded model onto its device and dtype, in eval mode, compiled when asked."""
        self.device = device or default_device()
        self.dtype = cast_for_device(self.model, self.device, dtype)
        self.model.eval()
        if compile_backend:  # "inductor" on a GPU (mode "reduce-overhead": CUDA graphs); "eager" traces on a CPU
            self.model.model.forward = torch.compile(self.model.model.forward, backend=compile_backend,
                                                     mode=compile_mode, dynamic=True)

    def _on_device(self, inputs: ModelInputs) -> ModelInputs:
        for f in dataclasses.fields(inputs):
            value = getattr(inputs, f.name)
            if value is not None:
                setattr(inputs, f.name, value.to(self.device))
        return inputs

    def sample_noise(self, stamp_ns: int | None = None) -> torch.Tensor:
        """The initial noise: from (seed, stamp_ns) when a stamp is given, so a replayed or offline-evaluated
        observation gives the chunk it gave live, whatever ran before; else the next draw of the seeded stream."""
        generator = self._generator
        if stamp_ns is not None:
            generator = torch.Generator(device="cpu").manual_seed((self.seed * 1_000_003 + int(stamp_ns)) % 2**63)
        return torch.randn(1, self.horizon, self.config.action_dim, generator=generator)

    def warmup(self) -> None:
        """One inference on a blank frame. In FAST mode its answer to a blank frame need not decode: the
        pass has run every kernel either way, and real observations report their own decode failures."""
        blank = {c.name: np.zeros((64, 64, 3), dtype=np.uint8) for c in self.contract.cameras}
        try:
            self.infer(Observation(blank, np.zeros(len(self.processor.state_names)), "warm up"),
                       noise=self.sample_noise())
        except FastDecodeError:
            if self.prediction_mode != "fast":
                raise

    def infer(self, observation: Observation, rtc: RtcRequest | None = None,
              noise: torch.Tensor | None = None) -> ChunkResult:
        with self._lock:
            start = time.time()
            subtask = self.subtask(observation) if self.subtask_max_tokens > 0 else ""
            observation = self.acting_observation(observation, subtask)
            if self.prediction_mode == "fast":
                normalized = self._generate_fast(observation)
            else:
                normalized = self._sample_flow(observation, rtc, noise)
            actions = self.processor.actions(normalized)
            return ChunkResult(actions=actions, action_names=self.contract.action_names, dt_s=self.dt_s,
                               state_names=self.processor.state_names,
                               state=np.asarray(observation.state, dtype=float), inference_start_s=start,
                               inference_end_s=time.time(),
                               denoising_steps=self.denoising_steps if self.prediction_mode == "flow" else 0,
                               rtc_prefix_steps=0 if rtc is None or self.prediction_mode == "fast" else
                               min(rtc.delay_steps, self.horizon),
                               subtask=subtask)

    def acting_observation(self, observation: Observation, subtask: str) -> Observation:
        """What the action prompt is built from, given the subtask: the flow family keeps the task."""
        return observation

    def _sample_flow(self, observation: Observation, rtc: RtcRequest | None, noise: torch.Tensor | None) -> np.ndarray:
        inputs = self._on_device(self.processor(observation))
        noise = (self.sample_noise(observation.stamp_ns) if noise is None else noise).to(self.device)
        guide = None if rtc is None else self.rtc_guide(rtc, observation, inputs.dof_mask)
        with torch.inference_mode() if guide is None else torch.no_grad():
            sampled = self.model.sample_actions(inputs, noise, self.denoising_steps, self.use_prefix_cache, rtc=guide)
        return sampled[0].float().cpu().numpy()

    def _generate_fast(self, observation: Observation) -> np.ndarray:
        """Greedy action tokens after the prompt → (H, max_action_dim) normalised; FastDecodeError if they do
        not form a chunk (no chunk then, never a zero one)."""
        tok = self.processor.tokenizer
        inputs = self._on_device(self.processor(observation, action_tokens=False))
        stop = tok.convert_tokens_to_ids("<|im_end|>")
        with torch.inference_mode():
            generated = self.model.generate_tokens(inputs, self.fast_max_tokens, {stop})
        stopped = len(generated) < self.fast_max_tokens
        return decode_chunk(self.fast, self.fast_vocabulary, generated, stopped, self.horizon,
                            self.processor.action_index, self.config.action_dim)

    def subtask(self, observation: Observation) -> str:
        """Greedy Uni-CoT subtask text for the observation (the reference's language prompt)."""
        tok = self.processor.tokenizer
        inputs = self._on_device(self.processor.language_inputs(observation))
        stop = {tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>")}
        with torch.inference_mode():
            ids = self.model.generate_tokens(inputs, self.subtask_max_tokens, stop)
        return tok.decode(ids, skip_special_tokens=True).strip()

    def rtc_guide(self, rtc: RtcRequest, observation: Observation, dof_mask: torch.Tensor) -> RtcGuide:
        """Committed steps (absolute robot units) → target and weights in the model's space."""
        committed = np.asarray(rtc.committed, dtype=float)[: self.horizon]
        if committed.ndim != 2 or committed.shape[1] != self.contract.action_dim:
            raise ValueError(f"rtc.committed has shape {committed.shape}, expected (K, {self.contract.action_dim})")
        if rtc.delay_steps < 0 or not np.all(np.isfinite(committed)):
            raise ValueError("rtc needs finite committed actions and a non-negative delay")
        relative = relative_values(committed, observation.state, self.processor.state_names, self.contract)
        target = np.zeros((self.horizon, self.config.action_dim))
        target[: len(committed)] = self.processor.normalized_actions(relative)
        weights = prefix_weights(self.horizon, rtc.delay_steps, len(committed), self.rtc_config.schedule)
        w = torch.tensor(weights, dtype=torch.float32, device=self.device)[None, :, None] * dof_mask.float()
        return RtcGuide(torch.tensor(target, dtype=torch.float32, device=self.device)[None], w,
                        self.rtc_config.max_guidance_weight)
