"""A file helper shared by the checkpoint layouts."""

from __future__ import annotations

from pathlib import Path

from wall_oss_ros.policy.wall_oss.checkpoint import CheckpointError


def resolve_path(directory: Path, reference: str, what: str) -> Path:
    """A path a config names, relative to the checkpoint directory unless absolute; it must exist."""
    path = Path(reference)
    path = path if path.is_absolute() else directory / path
    if not reference or not path.exists():
        raise CheckpointError(f"{directory}: {what} {reference!r} not found (resolved to {path})")
    return path
