"""WALL-OSS-0.5 as a PolicyBackend: checkpoint → processor + model → chunks in robot units.

Inference, noise, RTC guidance and the Uni-CoT subtask are the flow family's (policy/wall_oss/
backend_wall_oss.py): what differs is loading, the processor and the model.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from wall_oss_ros.core.contract import RobotContract
from wall_oss_ros.policy.backend import Observation
from wall_oss_ros.policy.prompts import ACTION_TOKEN, PROPRI_TOKEN
from wall_oss_ros.policy.rtc import RtcConfig
from wall_oss_ros.policy.wall_oss.backend_wall_oss import WallOssBackend, checkpoint_directory
from wall_oss_ros.policy.wall_oss.checkpoint import CheckpointError, load_weights, vocab_rows
from wall_oss_ros.policy.wall_oss.normalization import Normalizer, SlotStats
from wall_oss_ros.policy.wall_oss_05.configuration_wall_oss_05 import ACTION_DIM, STATE_DIM, WallOss05Config
from wall_oss_ros.policy.wall_oss_05.layouts_wall_oss_05 import resolve
from wall_oss_ros.policy.wall_oss_05.modeling_wall_oss_05 import WallOss05ForAction
from wall_oss_ros.policy.wall_oss_05.processor_wall_oss_05 import WallOss05Processor, camera_label


class WallOss05Backend(WallOssBackend):
    def __init__(self, checkpoint: str | Path, contract: RobotContract, device: str | None = None,
                 dtype: torch.dtype | None = None, denoising_steps: int = 10, use_prefix_cache: bool = True,
                 seed: int = 0, dataset: str | None = None, horizon: int | None = None,
                 rtc: RtcConfig | None = None, subtask_max_tokens: int = 0, compile_backend: str | None = None,
                 compile_mode: str | None = None, cpu_threads: int = 0, prediction_mode: str | None = None,
                 state_slots: str = "all", **_fast: object) -> None:
        """The flow family's parameters (FAST ones do not apply: 0.5 publishes the flow branch only).
        state_slots: "all" writes the 26 state slots into the prompt as LeRobot's port does, "active" only
        the contract's, as wall-x does."""
        from transformers import AutoProcessor

        if prediction_mode not in (None, "", "flow"):
            raise ValueError(f"prediction_mode {prediction_mode!r}: WALL-OSS-0.5 publishes the flow branch only")
        directory = checkpoint_directory(checkpoint, cpu_threads)
        resolved = resolve(directory, dataset)
        self.layout, self.prediction_mode = resolved.layout, "flow"
        self.normalizer_tensors = resolved.normalizer_tensors
        self._settings(contract, horizon or resolved.horizon, denoising_steps, use_prefix_cache, rtc,
                       subtask_max_tokens, seed)
        self.fast = self.fast_vocabulary = None
        hf = AutoProcessor.from_pretrained(str(resolved.processor_dir), local_files_only=True)
        tok = hf.tokenizer
        tok.add_tokens([PROPRI_TOKEN, ACTION_TOKEN])  # added by the training loader, absent from the files
        tok.padding_side = "left"
        state_stats, action_stats = resolved.stats or (SlotStats.identity(STATE_DIM), SlotStats.identity(ACTION_DIM))
        self.normalizer = Normalizer(state_stats, action_stats)
        rows = vocab_rows(resolved.state, str(directory))
        if rows < len(tok):
            raise CheckpointError(f"{directory}: the embedding has {rows} rows but the tokenizer, with <|propri|> "
                                  f"and <|action|>, {len(tok)} tokens")
        self.config = WallOss05Config.from_dict(resolved.config, str(directory / "config.json")).with_vocab_rows(rows)
        self.model = WallOss05ForAction(self.config, tok.convert_tokens_to_ids(ACTION_TOKEN))
        load_weights(self.model, resolved.state, str(directory))
        self._place(device, dtype, compile_backend, compile_mode)
        self.processor = WallOss05Processor(hf, contract, self.normalizer, self.horizon, state_slots)
        if resolved.trained_cameras is not None:
            trained = [camera_label(c) for c in resolved.trained_cameras]
            if trained != list(self.processor.views):
                raise CheckpointError(f"{directory}: the policy was fine-tuned with the views {trained}; the "
                                      f"contract's cameras give {self.processor.views} (set the cameras' view)")

    def acting_observation(self, observation: Observation, subtask: str) -> Observation:
        """Uni-CoT as wall-x serves 0.5: the generated subtask replaces the task in the action prompt."""
        return dataclasses.replace(observation, instruction=subtask) if subtask else observation
