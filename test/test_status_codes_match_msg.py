"""The core's states, status codes and intervention kinds are the ExecutorStatus message's constants."""

from __future__ import annotations

import pytest

from wall_oss_ros.core.safety.status import STATUS_TEXT, ExecutorState, Intervention, StatusCode
from wall_oss_ros.msg import ExecutorStatus


def _constants(prefix: str) -> dict[str, object]:
    return {k[len(prefix):]: getattr(ExecutorStatus, k) for k in dir(ExecutorStatus) if k.startswith(prefix)}


@pytest.mark.parametrize(("enum", "prefix"), [(ExecutorState, "STATE_"), (StatusCode, "STATUS_"),
                                              (Intervention, "INTERVENTION_")])
def test_enum_matches_message_constants(enum, prefix):
    assert {e.name: e.value for e in enum} == _constants(prefix)


def test_every_status_code_has_a_text():
    assert set(STATUS_TEXT) == set(StatusCode)
