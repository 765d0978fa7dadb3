"""The topics of a contract read from its YAML alone: the robot's (what it publishes into the graph) and the
controllers' (what the graph commands). A replay or launch machine need not have the robot model's packages,
which the full loader resolves for the kinematics."""

from __future__ import annotations

from pathlib import Path

import yaml

from wall_oss_ros.core.contract.errors import ContractError
from wall_oss_ros.core.contract.loader import contract_file

DEFAULT_JOINT_STATE_TOPICS = ("/joint_states",)  # as the loader's default


def _contract_data(ref: str) -> dict:
    path = Path(contract_file(ref))
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ContractError(f"{path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ContractError(f"{path}: not a contract (a mapping)")
    return data


def _groups(data: dict) -> list[dict]:
    return [g for g in (data.get("groups") or []) if isinstance(g, dict)]


def command_topics(ref: str) -> list[str]:
    """The controller topics the contract's groups command."""
    return sorted({str(g["output"]["topic"]) for g in _groups(_contract_data(ref))
                   if isinstance(g.get("output"), dict) and "topic" in g["output"]})


def robot_topics(ref: str) -> list[str]:
    """What the robot publishes and the policy and executor read: camera topics (as the contract's transport
    names them), joint states and end-effector pose states. A replay publishes these and nothing else."""
    data = _contract_data(ref)
    topics = {str(t) for t in (data.get("joint_state_topics") or DEFAULT_JOINT_STATE_TOPICS)}
    topics |= {str(c["topic"]) for c in (data.get("cameras") or []) if isinstance(c, dict) and "topic" in c}
    topics |= {str(g["state_topic"]) for g in _groups(data) if g.get("state_topic")}
    return sorted(topics)
