"""A tiny random WALL-OSS checkpoint, written once per test session by the project's generator."""

from __future__ import annotations

import pytest

from test.support.robots import contract


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    from wall_oss_ros.tools.make_tiny_checkpoint import write

    return write(tmp_path_factory.mktemp("ckpt") / "transformers", "transformers", "aloha_bimanual", seed=0)


@pytest.fixture(scope="session")
def aloha():
    return contract("aloha_bimanual")


@pytest.fixture(scope="session")
def backend(tiny_checkpoint, aloha):
    from wall_oss_ros.policy.wall_oss.backend_wall_oss import WallOssBackend

    return WallOssBackend(tiny_checkpoint, aloha, device="cpu", seed=0)
