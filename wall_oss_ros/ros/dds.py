"""DDS environment of the processes this package starts: RMW, Fast DDS profile, domain."""

from __future__ import annotations

import os
from collections.abc import Mapping

from wall_oss_ros.core.resources import config_path

PROFILE_ENV = "FASTDDS_DEFAULT_PROFILES_FILE"
RMW = "rmw_fastrtps_cpp"
# Variables that override or defeat the profile's transports (measured: camera frames lost).
CONFLICTING_ENV = ("ROS_LOCALHOST_ONLY", "ROS_AUTOMATIC_DISCOVERY_RANGE", "FASTDDS_BUILTIN_TRANSPORTS")


def loopback_profile() -> str:
    """The project's Fast DDS profile for one host: discovery on 127.0.0.1, data over shared memory."""
    return str(config_path("dds", "fastdds_loopback.xml"))


def ros_environment(base: Mapping[str, str] | None = None, domain_id: int | None = None) -> dict[str, str]:
    """Environment for a ROS process: the given (or current) one with RMW and DDS profile settled.

    A profile already named in the environment is kept (a multi-host robot sets a network profile);
    otherwise the loopback profile is used.
    """
    env = dict(os.environ if base is None else base)
    env.setdefault("RMW_IMPLEMENTATION", RMW)
    if not env.get(PROFILE_ENV):
        env[PROFILE_ENV] = loopback_profile()
        for name in CONFLICTING_ENV:
            env.pop(name, None)
    if domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(domain_id)
    return env
