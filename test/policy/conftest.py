"""Policy test fixtures (the tiny checkpoint lives in test/conftest.py)."""

from __future__ import annotations

import pytest

from test.support.robots import contract


@pytest.fixture(scope="session")
def aloha():
    return contract("aloha_bimanual")


@pytest.fixture(scope="session")
def backend(tiny_checkpoint, aloha):
    from wall_oss_ros.policy.wall_oss.backend_wall_oss import WallOssBackend

    return WallOssBackend(tiny_checkpoint, aloha, device="cpu", seed=0)
