"""Uni-CoT subtask generation: deterministic text, and the cached decode equals a full recompute."""

from __future__ import annotations

import torch

from test.policy.test_wall_oss_model import observation
from wall_oss_ros.policy.wall_oss.modeling_wall_oss import attention_bias


def full_recompute_greedy(model, inputs, max_new_tokens: int, stop: set[int]) -> list[int]:
    """Reference decode: the whole sequence through the model for every new token, no cache."""
    embeds = model.embed_inputs(inputs)
    positions = model.rope_positions(inputs)
    out: list[int] = []
    for _ in range(max_new_tokens):
        types = torch.zeros(embeds.shape[:2], dtype=torch.long)
        hidden = model.model(embeds, positions, attention_bias(types, types, 0), types)
        token = int(model.lm_head(hidden[:, -1]).argmax(dim=-1)[0])
        if token in stop:
            break
        out.append(token)
        embeds = torch.cat([embeds, model.model.embed_tokens(torch.tensor([[token]]))], dim=1)
        nxt = torch.full((3, 1, 1), int(positions.max()) + 1, dtype=positions.dtype)
        positions = torch.cat([positions, nxt], dim=2)
    return out


def test_subtask_text_is_deterministic_and_matches_full_recompute(backend):
    tok = backend.processor.tokenizer
    stop = {tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>")}
    inputs = backend.processor.language_inputs(observation())
    with torch.inference_mode():
        cached = backend.model.generate_tokens(inputs, 10, stop)
        reference = full_recompute_greedy(backend.model, inputs, 10, stop)
    assert cached == reference and len(cached) > 0
    backend.subtask_max_tokens = 10
    try:
        first, second = backend.infer(observation()), backend.infer(observation())
    finally:
        backend.subtask_max_tokens = 0
    assert isinstance(first.subtask, str) and first.subtask == second.subtask
    assert first.subtask == tok.decode(cached, skip_special_tokens=True).strip()


def test_language_prompt_has_no_state_or_action_tokens(backend):
    ids = backend.processor.language_inputs(observation()).input_ids[0]
    tok = backend.processor.tokenizer
    for token in ("<|propri|>", "<|action|>"):
        assert int((ids == tok.convert_tokens_to_ids(token)).sum()) == 0
    assert tok.decode(ids).endswith("Predict the next action in language.\n<|im_end|>\n<|im_start|>assistant\n")
