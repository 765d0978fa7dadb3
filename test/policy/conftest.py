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
