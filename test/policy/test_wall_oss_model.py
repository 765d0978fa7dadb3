"""The WALL-OSS runtime on a tiny checkpoint: shapes, determinism, KV cache = full recompute, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from wall_oss_ros.policy.backend import Observation
from wall_oss_ros.policy.prompts import prompt
from wall_oss_ros.policy.wall_oss.checkpoint import CheckpointError
from wall_oss_ros.policy.wall_oss.normalization import SlotStats
from wall_oss_ros.policy.wall_oss.processor_wall_oss import ObservationError, resize_dimensions

ARM = [0.0, -0.96, 1.16, 0.0, -0.3, 0.0, 0.5]


def observation(seed: int = 0, **kw: object) -> Observation:
    rng = np.random.default_rng(seed)
    images = kw.pop("images", {"top": rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)})
    return Observation(images, kw.pop("state", np.array(ARM * 2)), kw.pop("instruction", "insert the peg"))


def test_chunk_shape_units_and_names(backend, aloha):
    result = backend.infer(observation())
    assert result.actions.shape == (32, 14) and result.actions.dtype == np.float64
    assert result.action_names == aloha.action_names and result.dt_s == aloha.dt_s
    assert np.all(np.isfinite(result.actions))
    assert result.denoising_steps == 10 and result.inference_end_s >= result.inference_start_s



def test_same_noise_same_chunk_and_different_noise_differs(backend):
    noise = backend.sample_noise()
    a = backend.infer(observation(), noise=noise).actions
    b = backend.infer(observation(), noise=noise.clone()).actions
    np.testing.assert_array_equal(a, b)
    c = backend.infer(observation(), noise=backend.sample_noise()).actions
    assert np.abs(a - c).max() > 1e-3


def test_seeded_backends_draw_the_same_chunks(tiny_checkpoint, aloha):
    from wall_oss_ros.policy.wall_oss.backend_wall_oss import WallOssBackend

    first = [WallOssBackend(tiny_checkpoint, aloha, device="cpu", seed=7).infer(observation()).actions
             for _ in range(2)]
    np.testing.assert_array_equal(first[0], first[1])


@pytest.mark.parametrize("steps", [1, 10])
def test_prefix_kv_cache_equals_full_recompute(backend, steps):
    noise = backend.sample_noise()
    inputs = backend.processor(observation(3))
    with torch.inference_mode():
        cached = backend.model.sample_actions(inputs, noise, steps, use_prefix_cache=True)
        full = backend.model.sample_actions(inputs, noise, steps, use_prefix_cache=False)
    assert torch.max(torch.abs(cached - full)).item() < 1e-5


def test_the_observation_changes_the_chunk(backend):
    noise = backend.sample_noise()
    base = backend.infer(observation(0), noise=noise).actions
    other_image = backend.infer(observation(1), noise=noise).actions
    other_state = backend.infer(observation(0, state=np.array(ARM * 2) + 0.3), noise=noise).actions
    other_task = backend.infer(observation(0, instruction="fold the towel"), noise=noise).actions
    for other in (other_image, other_state, other_task):
        assert np.abs(base - other).max() > 1e-6


def test_prompt_and_tokens_follow_the_reference_layout(backend):
    text = prompt(["front view"], "insert the peg.", 4)
    assert text == ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nObservation: "
                    "front view: <|vision_start|><|image_pad|><|vision_end|>\nInstruction: insert the peg.\n"
                    "Predict the next action in robot action.\nProprioception: <|propri|>\n<|im_end|>\n"
                    "<|im_start|>assistant\n<|action|><|action|><|action|><|action|>")
    inputs = backend.processor(observation())
    ids = inputs.input_ids[0]
    tok = backend.processor.tokenizer
    n_image = int(inputs.image_grid_thw.prod(dim=1).sum()) // 4
    assert int((ids == tok.convert_tokens_to_ids("<|image_pad|>")).sum()) == n_image
    assert int((ids == tok.convert_tokens_to_ids("<|propri|>")).sum()) == 1
    assert bool((ids[-32:] == tok.convert_tokens_to_ids("<|action|>")).all())
    assert "insert the peg." in tok.decode(ids)  # the task gains its full stop


def test_images_are_resized_like_the_reference():
    assert resize_dimensions(480, 640) == (192, 256, 196, 252)  # long side 256, then multiples of 28
    assert resize_dimensions(640, 480) == (256, 192, 252, 196)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(["mean_std", "min_max"]), st.integers(0, 2**31))
def test_normalisation_round_trips(kind, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=20), rng.uniform(0.1, 3.0, size=20)
    stats = SlotStats(kind, a, b)
    x = a + b * rng.uniform(0.0, 1.0, size=20) if kind == "min_max" else rng.normal(size=20) * 5
    np.testing.assert_allclose(stats.unnormalize(stats.normalize(x)), x, atol=1e-6)  # LeRobot divides by std + 1e-8


@pytest.mark.parametrize(("change", "field"), [
    ({"images": {}}, "camera 'top' is missing"),
    ({"images": {"top": np.zeros((480, 640, 3), dtype=np.float32)}}, "dtype float32"),
    ({"images": {"top": np.zeros((480, 640), dtype=np.uint8)}}, "expected H×W×3"),
    ({"state": np.zeros(13)}, "state: 13 values"),
    ({"state": np.array([np.nan, *ARM[1:], *ARM])}, "not finite for ['left_arm/vx300s_left/waist']"),
    ({"instruction": "   "}, "instruction: empty"),
])
def test_bad_observations_name_the_field(backend, change, field):
    with pytest.raises(ObservationError) as info:
        backend.infer(observation(**change))
    assert field in str(info.value)


def test_checkpoint_with_mismatched_shapes_names_the_parameter(tiny_checkpoint, aloha, tmp_path):
    import shutil

    from wall_oss_ros.policy.wall_oss.backend_wall_oss import WallOssBackend

    broken = tmp_path / "broken"
    shutil.copytree(tiny_checkpoint, broken)
    config = json.loads((broken / "config.json").read_text())
    config["experts"][1]["intermediate_size"] = 80  # weights were written for 96
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"model\.layers\.0\.moe\.experts\.1\.\w+_proj\.weight has shape"):
        WallOssBackend(broken, aloha, device="cpu")


def test_checkpoint_with_missing_or_extra_keys_is_refused(tiny_checkpoint, aloha, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    from wall_oss_ros.policy.wall_oss.backend_wall_oss import WallOssBackend

    for edit, message in ((lambda s: s.pop("action_preprocessor.w3.weight"), "1 missing keys"),
                          (lambda s: s.__setitem__("model.layers.9.extra", s["action_preprocessor.w3.weight"].clone()),
                           "1 unexpected keys")):
        broken = tmp_path / message.replace(" ", "_")
        shutil.copytree(tiny_checkpoint, broken)
        state = load_file(str(broken / "model.safetensors"))
        edit(state)
        save_file({k: v.contiguous() for k, v in state.items()}, str(broken / "model.safetensors"))
        with pytest.raises(CheckpointError, match=message):
            WallOssBackend(broken, aloha, device="cpu")


def test_sharded_checkpoint_loads_to_the_same_chunk(tiny_checkpoint, aloha, backend, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    from wall_oss_ros.policy.wall_oss.backend_wall_oss import WallOssBackend

    sharded = tmp_path / "sharded"
    shutil.copytree(tiny_checkpoint, sharded)
    state = load_file(str(sharded / "model.safetensors"))
    (sharded / "model.safetensors").unlink()
    keys = sorted(state)
    halves = {"model-00001-of-00002.safetensors": keys[: len(keys) // 2],
              "model-00002-of-00002.safetensors": keys[len(keys) // 2:]}
    for name, part in halves.items():
        save_file({k: state[k] for k in part}, str(sharded / name))
    index = {"metadata": {}, "weight_map": {k: n for n, part in halves.items() for k in part}}
    (sharded / "model.safetensors.index.json").write_text(json.dumps(index))
    other = WallOssBackend(sharded, aloha, device="cpu")
    noise = backend.sample_noise()
    np.testing.assert_array_equal(other.infer(observation(), noise=noise).actions,
                                  backend.infer(observation(), noise=noise).actions)


def test_concurrent_callers_are_serialised(backend):
    """Two threads asking at once get the same chunks as one after the other (one inference in flight)."""
    import threading

    noise = backend.sample_noise()
    expected = backend.infer(observation(), noise=noise).actions
    results, errors = [], []

    def call() -> None:
        try:
            results.append(backend.infer(observation(), noise=noise.clone()).actions)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and len(results) == 4
    for r in results:
        np.testing.assert_array_equal(r, expected)


def test_cli_writes_a_loadable_checkpoint(tmp_path, aloha):
    import subprocess

    from wall_oss_ros.policy.wall_oss.backend_wall_oss import WallOssBackend

    out = subprocess.run(["wall-oss-ros", "make-tiny-checkpoint", str(tmp_path / "ckpt"), "--layout", "upstream"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert WallOssBackend(tmp_path / "ckpt", aloha, device="cpu").layout == "upstream"


def test_compiled_text_model_gives_the_same_chunk(tiny_checkpoint, aloha, backend):
    """The torch.compile path (traced by dynamo; the eager backend keeps this fast on a CPU)."""
    from wall_oss_ros.policy.wall_oss.backend_wall_oss import WallOssBackend

    compiled = WallOssBackend(tiny_checkpoint, aloha, device="cpu", compile_backend="eager")
    noise = backend.sample_noise()
    np.testing.assert_allclose(compiled.infer(observation(), noise=noise).actions,
                               backend.infer(observation(), noise=noise).actions, atol=1e-6)


def test_uniform_routing_equals_masked_routing(backend):
    experts = backend.model.model.layers[0].moe
    hidden = torch.randn(1, 7, backend.config.hidden_size)
    for kind in (0, 1):
        types = torch.full((1, 7), kind)
        torch.testing.assert_close(experts(hidden, types, uniform_type=kind), experts(hidden, types))


def test_three_cameras_and_relative_end_effectors(tiny_checkpoint):
    """bimanual_ee: three views in the prompt, 20-D relative EE actions, state carried for composition."""
    from test.support.robots import contract
    from wall_oss_ros.policy.wall_oss.backend_wall_oss import WallOssBackend

    ee = contract("bimanual_ee")
    backend = WallOssBackend(tiny_checkpoint, ee, device="cpu")
    rng = np.random.default_rng(0)
    images = {c.name: rng.integers(0, 255, (480, 640, 3), dtype=np.uint8) for c in ee.cameras}
    state = rng.normal(size=len(backend.processor.state_names)) * 0.1
    result = backend.infer(Observation(images, state, "fold the towel"))
    assert result.actions.shape == (32, 20) and result.action_names == ee.action_names
    assert result.state_names == backend.processor.state_names and np.array_equal(result.state, state)
    inputs = backend.processor(Observation(images, state, "fold the towel"))
    assert inputs.image_grid_thw.shape[0] == 3
    text = backend.processor.tokenizer.decode(inputs.input_ids[0])
    assert text.index("front view:") < text.index("left wrist view:") < text.index("right wrist view:")
    with pytest.raises(ObservationError, match="camera 'right_wrist_view' is missing"):
        backend.infer(Observation({k: v for k, v in images.items() if k != "right_wrist_view"}, state, "fold"))
