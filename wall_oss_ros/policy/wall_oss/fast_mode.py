"""FAST (discrete) prediction: generated <|action_token_k|> ids → a normalised action chunk.

wall-oss-fast answers the action prompt in language: greedy tokens after `<|im_start|>assistant\\n`
until `<|im_end|>`. Token `<|action_token_k|>` is id action_token_start_index + k in the merged Qwen
vocabulary and carries FAST id k. The FAST chunk covers the active action dimensions only (the DOF
mask, in model-slot order), normalised; this module puts them back into their slots.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wall_oss_ros.policy.wall_oss.fast_tokenizer import FastActionTokenizer, FastDecodeError

PREDICTION_MODES = ("flow", "fast")
DEFAULT_FAST_MAX_TOKENS = 100  # the reference's max_new_tokens


def action_token(k: int) -> str:
    return f"<|action_token_{k}|>"


@dataclass(frozen=True)
class FastVocabulary:
    """Where FAST ids live in the language model's vocabulary."""

    start: int  # id of <|action_token_0|>
    size: int  # number of FAST ids

    @classmethod
    def from_tokenizer(cls, tokenizer: object, fast: FastActionTokenizer) -> FastVocabulary:
        """From tokenizer_config's action_token_start_index (as the reference reads it), checked against the
        token strings; the FAST BPE must fit into the action tokens the language model has."""
        init = getattr(tokenizer, "init_kwargs", {}) or {}
        first = tokenizer.convert_tokens_to_ids(action_token(0))
        start = int(init.get("action_token_start_index", first if first is not None else -1))
        available = int(init.get("action_token_vocab_size", 0)) or _count_action_tokens(tokenizer, start)
        if start < 0 or first != start:
            raise ValueError(f"tokenizer: {action_token(0)} is id {first}, action_token_start_index says {start}")
        needed = fast.bpe.get_vocab_size()
        if needed > available:
            raise ValueError(f"the FAST tokenizer has {needed} tokens, the language model only {available} "
                             f"action tokens")
        last = tokenizer.convert_tokens_to_ids(action_token(needed - 1))
        if last != start + needed - 1:
            raise ValueError(f"tokenizer: {action_token(needed - 1)} is id {last}, expected {start + needed - 1} "
                             "(action tokens must be contiguous)")
        return cls(start, needed)

    def fast_ids(self, generated: list[int]) -> list[int]:
        """The FAST ids among generated tokens (other tokens are skipped, as the reference does)."""
        return [t - self.start for t in generated if self.start <= t < self.start + self.size]


def _count_action_tokens(tokenizer: object, start: int) -> int:
    vocab = tokenizer.get_vocab()
    count = 0
    while vocab.get(action_token(count)) == start + count:
        count += 1
    return count


def decode_chunk(fast: FastActionTokenizer, vocabulary: FastVocabulary, generated: list[int], stopped: bool,
                 horizon: int, active_slots: np.ndarray, width: int) -> np.ndarray:
    """(horizon, width) normalised actions with the active slots filled; FastDecodeError names the reason."""
    ids = vocabulary.fast_ids(generated)
    if not ids:
        raise FastDecodeError(f"the model generated no action tokens ({len(generated)} tokens, "
                              f"{'stopped at <|im_end|>' if stopped else 'token budget exhausted'})")
    slots = np.sort(np.asarray(active_slots, dtype=int))
    try:
        values = fast.decode(ids, horizon, len(slots))
    except FastDecodeError as exc:
        ending = "stopped at <|im_end|>" if stopped else "token budget exhausted before <|im_end|>"
        raise FastDecodeError(f"{exc} ({ending})") from exc
    out = np.zeros((horizon, width))
    out[:, slots] = values
    return out
