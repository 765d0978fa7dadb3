"""Policy test fixtures (the tiny checkpoint lives in test/conftest.py)."""

from __future__ import annotations

import pytest

from test.support.robots import contract

LAYOUTS = ("transformers", "lerobot", "upstream", "wallx-1.1")  # every layout make_tiny_checkpoint writes


@pytest.fixture(scope="session")
def aloha():
    return contract("aloha_bimanual")


@pytest.fixture(scope="session")
def backend(tiny_checkpoint, aloha):
    from wall_oss_ros.policy.wall_oss.backend_wall_oss import WallOssBackend

    return WallOssBackend(tiny_checkpoint, aloha, device="cpu", seed=0)


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory):
    """The same tiny flow model in every layout."""
    from wall_oss_ros.tools.make_tiny_checkpoint import write

    root = tmp_path_factory.mktemp("layouts")
    return {layout: write(root / layout, layout, "aloha_bimanual", seed=3) for layout in LAYOUTS}


@pytest.fixture(scope="session")
def checkpoints_05(tmp_path_factory):
    """The same tiny WALL-OSS-0.5 model in both published layouts."""
    from wall_oss_ros.tools.make_tiny_checkpoint_05 import LAYOUTS as LAYOUTS_05
    from wall_oss_ros.tools.make_tiny_checkpoint_05 import write

    root = tmp_path_factory.mktemp("layouts_05")
    return {layout: write(root / layout, layout) for layout in LAYOUTS_05}


@pytest.fixture(scope="session")
def backend_05(checkpoints_05, aloha):
    from wall_oss_ros.policy.wall_oss_05.backend_wall_oss_05 import WallOss05Backend

    return WallOss05Backend(checkpoints_05["x-square"], aloha, device="cpu", seed=0)
