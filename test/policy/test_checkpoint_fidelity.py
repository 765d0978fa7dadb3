"""Checkpoints as they are published: bf16, vocab rows, either tied half, refused flags, reference pixels."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from test.policy.test_wall_oss_model import ARM, observation
from wall_oss_ros.policy.backend import Observation
from wall_oss_ros.policy.wall_oss.checkpoint import CheckpointError
from wall_oss_ros.policy.wall_oss.configuration_wall_oss import ConfigError


def _backend(path, contract, **kw):
    from wall_oss_ros.policy.wall_oss.backend_wall_oss import WallOssBackend

    return WallOssBackend(path, contract, device="cpu", **kw)


@pytest.fixture(scope="module")
def bf16(tiny_checkpoint, aloha):
    return _backend(tiny_checkpoint, aloha, dtype=torch.bfloat16)


def test_bf16_keeps_norms_and_action_head_in_fp32(bf16):
    for name, p in bf16.model.named_parameters():
        fp32 = "layernorm" in name or name.startswith(("model.norm", "action_preprocessor"))
        assert p.dtype == (torch.float32 if fp32 else torch.bfloat16), name


def test_bf16_kv_cache_equals_bf16_full_recompute(bf16):
    """The cached branch used to feed the fp32 action embedding into bf16 attention and crash."""
    noise = bf16.sample_noise()
    inputs = bf16.processor(observation(3))
    with torch.inference_mode():
        cached = bf16.model.sample_actions(inputs, noise, 10, use_prefix_cache=True)
        full = bf16.model.sample_actions(inputs, noise, 10, use_prefix_cache=False)
    span = float(full.max() - full.min())
    assert torch.max(torch.abs(cached - full)).item() < 0.01 * span


def test_bf16_is_fp32_within_bf16_precision(bf16, backend):
    bf16.warmup()  # the node's configure step, which crashed on every GPU robot
    noise = backend.sample_noise()
    fp32 = backend.infer(observation(), noise=noise).actions
    half = bf16.infer(observation(), noise=noise).actions
    span = fp32.max() - fp32.min()
    error = np.abs(half - fp32).max()
    assert 0 < error < 0.02 * span  # bf16 really ran (not the fp32 path) and stays within its precision


def test_embedding_rows_come_from_the_checkpoint_not_config_vocab_size(backend, tiny_checkpoint):
    config = json.loads((tiny_checkpoint / "config.json").read_text())
    rows = load_file(str(tiny_checkpoint / "model.safetensors"))["model.embed_tokens.weight"].shape[0]
    assert config["vocab_size"] != rows and "pad_token_id" not in config  # as published
    assert backend.model.model.embed_tokens.weight.shape[0] == rows == len(backend.processor.tokenizer)


def test_fewer_rows_than_tokens_is_refused(tiny_checkpoint, aloha, tmp_path):
    broken = tmp_path / "short"
    shutil.copytree(tiny_checkpoint, broken)
    state = load_file(str(broken / "model.safetensors"))
    state["model.embed_tokens.weight"] = state["model.embed_tokens.weight"][:-3].contiguous()
    save_file(state, str(broken / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"embedding has \d+ rows but the tokenizer \d+ tokens"):
        _backend(broken, aloha)


@pytest.mark.parametrize("keep", ["lm_head.weight", "both"])
def test_either_tied_half_loads_to_the_same_chunk(tiny_checkpoint, aloha, backend, tmp_path, keep):
    """LeRobot's save keeps lm_head.weight and drops the tied embed_tokens; transformers does the opposite."""
    other = tmp_path / keep
    shutil.copytree(tiny_checkpoint, other)
    state = load_file(str(other / "model.safetensors"))
    embed = state["model.embed_tokens.weight"]
    state["lm_head.weight"] = embed.clone()
    if keep == "lm_head.weight":
        del state["model.embed_tokens.weight"]
    save_file(state, str(other / "model.safetensors"))
    noise = backend.sample_noise()
    np.testing.assert_array_equal(_backend(other, aloha).infer(observation(), noise=noise).actions,
                                  backend.infer(observation(), noise=noise).actions)


def test_tied_halves_that_differ_are_refused(tiny_checkpoint, aloha, tmp_path):
    other = tmp_path / "differ"
    shutil.copytree(tiny_checkpoint, other)
    state = load_file(str(other / "model.safetensors"))
    state["lm_head.weight"] = state["model.embed_tokens.weight"] + 1.0
    save_file(state, str(other / "model.safetensors"))
    with pytest.raises(CheckpointError, match="tie_word_embeddings is true but"):
        _backend(other, aloha)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("attention_moe", True, "attention_moe=True"),
    ("norm_moe", True, "norm_moe=True"),
    ("use_adarms", True, "use_adarms=True"),
    ("use_x_pred", True, "use_x_pred=True"),
    ("causal_action_attention_mask", True, "causal_action_attention_mask=True"),
    ("mlp_moe", False, "mlp_moe=False"),
    ("action_hidden_size", 32, "action_hidden_size=32"),
    ("use_state_string_representation", True, "use_state_string_representation=True"),
    ("some_new_flag", 1, "some_new_flag is an unknown field"),
])
def test_a_config_field_that_changes_the_math_is_refused_by_name(tiny_checkpoint, aloha, tmp_path, field, value,
                                                                  message):
    broken = tmp_path / "flag"
    shutil.copytree(tiny_checkpoint, broken)
    config = json.loads((broken / "config.json").read_text())
    config[field] = value
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=message):
        _backend(broken, aloha)


def test_fields_of_the_published_config_load(tiny_checkpoint, aloha, tmp_path):
    """Keys of wall-x's qwen25_config.json that do not change inference are accepted, at their values."""
    other = tmp_path / "published"
    shutil.copytree(tiny_checkpoint, other)
    config = json.loads((other / "config.json").read_text())
    config.update(_attn_implementation="flash_attention_2", torch_dtype="bfloat16", transformers_version="4.41.2",
                  initializer_range=0.02, attention_dropout=0.0, use_cache=True, causal_action_attention_mask=False)
    config["vision_config"].update(in_chans=3, spatial_patch_size=14)
    (other / "config.json").write_text(json.dumps(config))
    assert _backend(other, aloha).infer(observation()).actions.shape == (32, 14)


def test_pixels_equal_torchvision_v2_resize_as_lerobot_does(backend):
    """LeRobot resizes the uint8 frame with torchvision.transforms.v2.functional.resize (bicubic, antialias)
    to long side 256, then to smart_resize's multiples of 28; the v1 function gives other pixels."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as v1
    from torchvision.transforms.v2 import functional as v2

    frame = np.random.default_rng(5).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    chw = torch.from_numpy(frame).permute(2, 0, 1)

    def reference(resize) -> torch.Tensor:
        image = resize(chw, [192, 256], interpolation=InterpolationMode.BICUBIC, antialias=True)
        image = resize(image, [196, 252], interpolation=InterpolationMode.BICUBIC, antialias=True)
        return backend.processor.hf.image_processor(images=[image], return_tensors="pt")["pixel_values"]

    ours = backend.processor(Observation({"top": frame}, np.array(ARM * 2), "insert the peg")).pixel_values
    assert torch.equal(ours, reference(v2.resize))
    assert not torch.equal(ours, reference(v1.resize))  # the comparison can tell the two apart


def test_instruction_is_kept_as_given_with_a_full_stop(backend):
    tok = backend.processor.tokenizer
    ids = backend.processor(observation(instruction="  insert the peg ")).input_ids[0]
    assert "Instruction:   insert the peg .\n" in tok.decode(ids)
    ids = backend.processor(observation(instruction="Fold the towel.")).input_ids[0]
    assert "Instruction: Fold the towel.\n" in tok.decode(ids)


def test_the_aloha_camera_is_the_top_view_as_lerobot_names_it(backend):
    text = backend.processor.tokenizer.decode(backend.processor(observation()).input_ids[0])
    assert "Observation: top view: <|vision_start|>" in text


def test_the_chunk_reacts_to_pixels_state_and_instruction(backend):
    """The tiny checkpoints must react to their inputs, or tests cannot see wiring mistakes."""
    noise = backend.sample_noise()
    base = backend.infer(observation(0), noise=noise).actions
    span = base.max() - base.min()
    # (observation, least movement as a fraction of the chunk's span): the state is one <|propri|> token among
    # ~130 that the action tokens attend to, so it moves the chunk less than 63 image tokens or the words do.
    changed = {
        "pixels": (observation(1), 0.01),
        "state": (observation(0, state=np.array(ARM * 2) + 0.3), 0.001),
        "instruction": (observation(0, instruction="fold the towel"), 0.01),
    }
    for what, (obs, fraction) in changed.items():
        moved = np.abs(backend.infer(obs, noise=noise).actions - base).max()
        assert moved > fraction * span, f"changing the {what} moved the chunk by only {moved:.2e} (span {span:.2f})"
