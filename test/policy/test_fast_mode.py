"""FAST (discrete) mode: tokenizer round trip, generation → decode end to end, decode failures."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.fft import dct

from test.policy.test_wall_oss_model import observation
from test.support.fast_imprint import answer_ids, imprint
from wall_oss_ros.policy.wall_oss.fast_tokenizer import FastActionTokenizer, FastDecodeError


@pytest.fixture(scope="module")
def fast(tiny_checkpoint):
    return FastActionTokenizer.from_pretrained(tiny_checkpoint / "fast_tokenizer")


def smooth_chunk(rng: np.random.Generator, horizon: int = 32, width: int = 14) -> np.ndarray:
    t = np.linspace(0.0, 1.0, horizon)[:, None]
    offset, amplitude = rng.uniform(-0.5, 0.5, (1, width)), rng.uniform(-0.4, 0.4, (1, width))
    return np.clip(offset + amplitude * np.sin(2 * np.pi * (rng.uniform(0.2, 1.5, (1, width)) * t)), -1, 1)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31), st.integers(8, 32), st.integers(1, 20))
def test_round_trip_is_exact_up_to_the_coefficient_rounding(fast, seed, horizon, width):
    chunk = smooth_chunk(np.random.default_rng(seed), horizon, width)
    decoded = fast.decode(fast.encode(chunk), horizon, width)
    # Each DCT coefficient is rounded to 1/scale: the error lives in the coefficients, at most half a step.
    error = dct(decoded - chunk, axis=0, norm="ortho")
    assert np.abs(error).max() <= 0.5 / fast.scale + 1e-9


def test_files_round_trip_and_compress(fast, tmp_path):
    chunk = smooth_chunk(np.random.default_rng(1))
    ids = fast.encode(chunk)
    assert len(ids) < chunk.size / 4  # BPE merges the coefficient characters
    fast.save_pretrained(tmp_path / "copy")
    assert json.loads((tmp_path / "copy" / "processor_config.json").read_text())["min_token"] == fast.min_token
    assert FastActionTokenizer.from_pretrained(tmp_path / "copy").encode(chunk) == ids


def test_decode_failures_are_errors_not_zero_chunks(fast):
    ids = fast.encode(smooth_chunk(np.random.default_rng(2)))
    with pytest.raises(FastDecodeError, match=r"a \(32, 14\) chunk needs 448"):
        fast.decode(ids[:-3], 32, 14)
    with pytest.raises(FastDecodeError, match="no action tokens"):
        fast.decode([], 32, 14)
    with pytest.raises(FastDecodeError, match="outside the FAST vocabulary"):
        fast.decode([*ids, 10**6], 32, 14)


def test_a_model_that_does_not_answer_with_action_tokens_gives_no_chunk(tiny_checkpoint, aloha):
    from wall_oss_ros.policy.wall_oss.backend_wall_oss import WallOssBackend

    random_model = WallOssBackend(tiny_checkpoint, aloha, device="cpu", prediction_mode="fast", fast_max_tokens=12)
    with pytest.raises(FastDecodeError, match="token budget exhausted"):
        random_model.infer(observation())


def test_generation_decodes_end_to_end_through_the_backend(tiny_checkpoint, aloha):
    """A tiny model taught one answer generates it; the chunk is its FAST decode, unnormalised, in contract order."""
    from wall_oss_ros.policy.wall_oss.backend_wall_oss import WallOssBackend

    backend = WallOssBackend(tiny_checkpoint, aloha, device="cpu", prediction_mode="fast")
    obs = observation(4)
    target = smooth_chunk(np.random.default_rng(3), 32, len(backend.processor.action_index))
    imprint(backend, obs, answer_ids(backend, target))
    result = backend.infer(obs)
    expected = np.zeros((32, backend.config.action_dim))
    expected[:, np.sort(backend.processor.action_index)] = backend.fast.decode(backend.fast.encode(target), 32,
                                                                               target.shape[1])
    np.testing.assert_allclose(result.actions, backend.processor.actions(expected), atol=1e-9)
    assert result.denoising_steps == 0 and result.actions.shape == (32, 14)
    assert np.abs(result.actions - backend.processor.actions(np.zeros_like(expected))).max() > 0.1  # not a zero chunk


def test_the_policy_config_chooses_fast_and_the_vocabulary_is_checked(tiny_checkpoint, aloha, tmp_path):
    from wall_oss_ros.policy.wall_oss.backend_wall_oss import WallOssBackend
    from wall_oss_ros.tools.make_tiny_checkpoint import write

    policy = write(tmp_path / "policy", "lerobot", "aloha_bimanual", seed=0)
    config = json.loads((policy / "config.json").read_text())
    (policy / "config.json").write_text(json.dumps({**config, "prediction_mode": "fast"}))
    shutil.copytree(policy / "base" / "fast_tokenizer", policy / "fast_tokenizer")
    backend = WallOssBackend(policy, aloha, device="cpu")
    assert backend.prediction_mode == "fast"
    assert backend.fast_vocabulary.start == backend.processor.tokenizer.convert_tokens_to_ids("<|action_token_0|>")
    with pytest.raises(ValueError, match="prediction_mode must be one of"):
        WallOssBackend(tiny_checkpoint, aloha, device="cpu", prediction_mode="diffusion-ish")
    with pytest.raises(Exception, match="needs the FAST tokenizer files"):
        WallOssBackend(tiny_checkpoint, aloha, device="cpu", prediction_mode="fast", fast_tokenizer=tmp_path / "none")
