"""Teach a tiny random checkpoint one FAST answer, so generation → decode can be tested end to end.

A random model never emits a decodable token sequence; a few hundred optimiser steps of teacher forcing
on one prompt make its greedy answer the FAST tokens of a chosen chunk followed by <|im_end|>.
"""

from __future__ import annotations

import numpy as np
import torch

from wall_oss_ros.policy.backend import Observation
from wall_oss_ros.policy.wall_oss.modeling_wall_oss import ModelInputs, attention_bias


def answer_ids(backend, chunk: np.ndarray) -> list[int]:
    """The token ids wall-oss-fast answers with for a (H, active dims) normalised chunk."""
    stop = backend.processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    return [backend.fast_vocabulary.start + i for i in backend.fast.encode(chunk)] + [stop]


def imprint(backend, observation: Observation, answer: list[int], max_steps: int = 600) -> int:
    """Train until the teacher-forced argmax equals `answer` at every position; returns the steps taken."""
    prompt = backend.processor(observation, action_tokens=False)
    length = prompt.input_ids.shape[1]
    ids = torch.cat([prompt.input_ids, torch.tensor([answer[:-1]])], dim=1)
    inputs = ModelInputs(ids, torch.ones_like(ids), prompt.pixel_values, prompt.image_grid_thw, prompt.proprio,
                         prompt.proprio_mask, prompt.dof_mask)
    target = torch.tensor(answer)
    model = backend.model
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    types = torch.zeros_like(ids)
    bias = attention_bias(types, types, 0, inputs.attention_mask)
    for step in range(max_steps):
        with torch.enable_grad():
            hidden = model.model(model.embed_inputs(inputs), model.rope_positions(inputs), bias, types)
            logits = model.lm_head(hidden[0, length - 1:])
            loss = torch.nn.functional.cross_entropy(logits, target)
            if bool((logits.argmax(dim=-1) == target).all()) and float(loss.detach()) < 0.05:
                return step
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    raise AssertionError(f"the tiny model did not learn the answer in {max_steps} steps "
                         f"(loss {float(loss.detach()):.3f})")
