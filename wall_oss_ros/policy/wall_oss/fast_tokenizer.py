"""FAST action tokenizer (Pertsch et al. 2025) reading the published `physical-intelligence/fast` files.

The published tokenizer is a transformers remote-code processor (`UniversalActionProcessor`): loading it
runs code from the hub. Its algorithm is small and its state is two plain files, so it is done here with
scipy's DCT and the `tokenizers` library, and no remote code runs:
  processor_config.json  scale, min_token, vocab_size (and optionally time_horizon, action_dim)
  tokenizer.json         a byte-level BPE (`tokenizers` JSON) over characters chr(coefficient - min_token)
Encode: DCT-II (orthonormal) along time per dimension → round(coefficient · scale) → one character per
coefficient, time-major → BPE ids. Decode reverses it; where the reference returns zeros with a printed
warning (wrong token count, undecodable ids), this raises FastDecodeError: a zero chunk looks like a plan.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.fft import dct, idct

PROCESSOR_FILE, TOKENIZER_FILE = "processor_config.json", "tokenizer.json"


class FastDecodeError(ValueError):
    """Generated tokens that do not decode to a (horizon, action_dim) chunk; the message says why."""


@dataclass
class FastActionTokenizer:
    bpe: object  # tokenizers.Tokenizer
    scale: float
    min_token: int
    vocab_size: int

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> FastActionTokenizer:
        from tokenizers import Tokenizer

        directory = Path(directory)
        try:
            config = json.loads((directory / PROCESSOR_FILE).read_text())
            bpe = Tokenizer.from_file(str(directory / TOKENIZER_FILE))
        except Exception as exc:  # OSError, JSON errors, and tokenizers' own exception type
            raise ValueError(f"{directory}: not a FAST tokenizer ({PROCESSOR_FILE} + {TOKENIZER_FILE}): {exc}") from exc
        missing = [k for k in ("scale", "min_token", "vocab_size") if k not in config]
        if missing:
            raise ValueError(f"{directory / PROCESSOR_FILE}: lacks {missing}")
        tokenizer = cls(bpe, float(config["scale"]), int(config["min_token"]), int(config["vocab_size"]))
        if bpe.get_vocab_size() > tokenizer.vocab_size:
            raise ValueError(f"{directory}: BPE has {bpe.get_vocab_size()} tokens, processor_config says "
                             f"vocab_size {tokenizer.vocab_size}")
        return tokenizer

    def save_pretrained(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.bpe.save(str(directory / TOKENIZER_FILE))
        (directory / PROCESSOR_FILE).write_text(json.dumps({
            "processor_class": "UniversalActionProcessor", "scale": self.scale, "min_token": self.min_token,
            "vocab_size": self.vocab_size}, indent=2))

    def coefficients(self, actions: np.ndarray) -> np.ndarray:
        """(T, D) actions → (T, D) integer DCT coefficients (what the tokens carry)."""
        return np.around(dct(np.asarray(actions, dtype=float), axis=0, norm="ortho") * self.scale).astype(int)

    def encode(self, actions: np.ndarray) -> list[int]:
        actions = np.asarray(actions, dtype=float)
        if actions.ndim != 2 or not np.all(np.isfinite(actions)):
            raise ValueError(f"FAST encodes a finite (T, D) chunk, got shape {actions.shape}")
        chars = np.maximum(self.coefficients(actions).reshape(-1) - self.min_token, 0)
        return list(self.bpe.encode("".join(map(chr, chars))).ids)

    def decode(self, ids: Iterable[int], horizon: int, action_dim: int) -> np.ndarray:
        ids = [int(i) for i in ids]
        if not ids:
            raise FastDecodeError("no action tokens to decode")
        bad = [i for i in ids if not 0 <= i < self.bpe.get_vocab_size()]
        if bad:
            raise FastDecodeError(f"token ids {bad[:5]} are outside the FAST vocabulary of {self.bpe.get_vocab_size()}")
        text = self.bpe.decode(ids)
        coefficients = np.array([ord(c) for c in text], dtype=float) + self.min_token
        if coefficients.size != horizon * action_dim:
            raise FastDecodeError(f"{len(ids)} tokens decode to {coefficients.size} DCT coefficients, a "
                                  f"({horizon}, {action_dim}) chunk needs {horizon * action_dim}")
        return idct(coefficients.reshape(horizon, action_dim) / self.scale, axis=0, norm="ortho")

    @classmethod
    def fit(cls, chunks: Iterable[np.ndarray], scale: float = 10.0, vocab_size: int = 1024) -> FastActionTokenizer:
        """Train a new BPE on example chunks (offline; a new vocabulary, not the published one)."""
        from tokenizers import ByteLevelBPETokenizer, trainers

        coefficients = [np.around(dct(np.asarray(c, dtype=float), axis=0, norm="ortho") * scale).astype(int).reshape(-1)
                        for c in chunks]
        low = int(min(c.min() for c in coefficients))
        high = int(max(c.max() for c in coefficients))
        bpe = ByteLevelBPETokenizer()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False, special_tokens=[],
                                      initial_alphabet=[chr(i) for i in range(high - low + 1)], max_token_length=10000)
        bpe._tokenizer.train_from_iterator(("".join(map(chr, c - low)) for c in coefficients), trainer=trainer)
        return cls(bpe._tokenizer, float(scale), low, int(vocab_size))
