"""Every checkpoint layout loads through the one loader, strictly, and gives the same actions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from test.policy.conftest import LAYOUTS
from test.policy.test_wall_oss_model import observation
from wall_oss_ros.policy.wall_oss.checkpoint import CheckpointError

DETECTED = {"transformers": "transformers", "lerobot": "lerobot", "upstream": "upstream", "wallx-1.1": "upstream"}


def test_every_layout_loads_strictly_and_gives_the_same_actions(checkpoints, aloha):
    from wall_oss_ros.policy.wall_oss.backend_wall_oss import WallOssBackend

    backends = {layout: WallOssBackend(path, aloha, device="cpu") for layout, path in checkpoints.items()}
    assert {layout: b.layout for layout, b in backends.items()} == DETECTED
    noise = backends["transformers"].sample_noise()
    actions = {layout: b.infer(observation(), noise=noise).actions for layout, b in backends.items()}
    for layout in LAYOUTS[1:]:
        np.testing.assert_allclose(actions[layout], actions["transformers"], atol=1e-5)
    weights = {layout: b.model.state_dict() for layout, b in backends.items()}
    for key, value in weights["transformers"].items():
        for layout in LAYOUTS[1:]:
            assert torch.equal(weights[layout][key], value), f"{layout}: {key} differs"


def test_upstream_normaliser_must_be_tensors(checkpoints, aloha, tmp_path):
    import shutil

    from wall_oss_ros.policy.wall_oss.backend_wall_oss import WallOssBackend

    broken = tmp_path / "upstream"
    shutil.copytree(checkpoints["upstream"], broken)

    from argparse import Namespace  # an arbitrary object, as a torch.save of a whole module would store

    torch.save({"min.tiny": Namespace(values=[1.0])}, broken / "normalizer_action.pth")
    with pytest.raises(CheckpointError, match="not a tensor-only file"):
        WallOssBackend(broken, aloha, device="cpu")


def test_unknown_dataset_names_the_choices(checkpoints, aloha):
    from wall_oss_ros.policy.wall_oss.backend_wall_oss import WallOssBackend

    for layout in ("transformers", "upstream"):
        with pytest.raises(CheckpointError, match=r"no statistics for dataset 'other'.*tiny"):
            WallOssBackend(checkpoints[layout], aloha, device="cpu", dataset="other")


def test_not_a_checkpoint(tmp_path, aloha):
    from wall_oss_ros.policy.wall_oss.backend_wall_oss import WallOssBackend

    with pytest.raises(CheckpointError, match="not a WALL-OSS checkpoint"):
        WallOssBackend(tmp_path, aloha, device="cpu")
