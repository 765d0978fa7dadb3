"""The one way the nodes and tools load a policy: the model family is told from the checkpoint's files
(policy/family.py) and the matching backend built, so a user names a checkpoint, not its architecture."""

from __future__ import annotations

from pathlib import Path

from wall_oss_ros.core.contract import RobotContract
from wall_oss_ros.policy.backend import PolicyBackend
from wall_oss_ros.policy.family import FLOW, OSS_05, FamilyError, detect_family


def load_backend(checkpoint: str | Path, contract: RobotContract, **params: object) -> tuple[PolicyBackend, str]:
    """(backend, "a <family> checkpoint (<evidence>)"); params are the backends' shared keyword arguments.
    Files that name no family go to the flow family's loader, which names what is wrong with them."""
    directory = Path(checkpoint)
    family, evidence = detect_family(directory) if directory.is_dir() else (None, "")
    if family == OSS_05:
        from wall_oss_ros.policy.wall_oss_05.backend_wall_oss_05 import WallOss05Backend

        return WallOss05Backend(directory, contract, **params), f"a {OSS_05} checkpoint ({evidence})"
    if family not in (None, FLOW):
        raise FamilyError(f"{directory}: {family} has no backend")
    from wall_oss_ros.policy.wall_oss.backend_wall_oss import WallOssBackend

    backend = WallOssBackend(directory, contract, **params)
    return backend, f"a {FLOW} checkpoint ({evidence or 'its files'})"
