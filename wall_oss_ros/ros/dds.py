"""DDS environment of the processes this package starts: RMW, Fast DDS profile, domain."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping, Sequence

from wall_oss_ros.core.resources import config_path

PROFILE_ENV = "FASTDDS_DEFAULT_PROFILES_FILE"
RMW = "rmw_fastrtps_cpp"
# Variables that override or defeat the profile's transports (measured: camera frames lost).
CONFLICTING_ENV = ("ROS_LOCALHOST_ONLY", "ROS_AUTOMATIC_DISCOVERY_RANGE", "FASTDDS_BUILTIN_TRANSPORTS")


def loopback_profile() -> str:
    """The project's Fast DDS profile for one host: discovery on 127.0.0.1, data over shared memory."""
    return str(config_path("dds", "fastdds_loopback.xml"))


def network_profile(address: str, peers: Sequence[str]) -> str:
    """A Fast DDS profile for a graph split over hosts: UDPv4 only (no shared memory, so what crosses hosts
    goes over the network), discovery by unicast to this host's address and the peers' (no multicast),
    announcing only `address`. Fast DDS 3's interface allowlist also stops sending to other hosts, so the
    address pins the locators instead. Large socket buffers for camera frames."""
    for a in (address, *peers):
        ipaddress.IPv4Address(a)  # ValueError for anything but a dotted IPv4 address
    if not peers:
        raise ValueError("a network profile needs the other hosts' addresses (peers)")

    def locator(a: str) -> str:
        return f"<locator><udpv4><address>{a}</address></udpv4></locator>"

    return f"""<?xml version="1.0" encoding="UTF-8" ?>
<!-- wall_oss_ros network profile for {address}, peers {", ".join(peers)} (wall-oss-ros dds-profile). -->
<dds xmlns="http://www.eprosima.com">
  <profiles>
    <transport_descriptors>
      <transport_descriptor>
        <transport_id>udp_network</transport_id>
        <type>UDPv4</type>
        <maxInitialPeersRange>32</maxInitialPeersRange>
        <sendBufferSize>8388608</sendBufferSize>
        <receiveBufferSize>8388608</receiveBufferSize>
      </transport_descriptor>
    </transport_descriptors>
    <participant profile_name="wall_oss_ros_network" is_default_profile="true">
      <rtps>
        <useBuiltinTransports>false</useBuiltinTransports>
        <userTransports><transport_id>udp_network</transport_id></userTransports>
        <defaultUnicastLocatorList>{locator(address)}</defaultUnicastLocatorList>
        <builtin>
          <discovery_config>
            <leaseDuration><sec>5</sec></leaseDuration>
            <leaseAnnouncement><sec>0</sec><nanosec>500000000</nanosec></leaseAnnouncement>
          </discovery_config>
          <metatrafficUnicastLocatorList>{locator(address)}</metatrafficUnicastLocatorList>
          <initialPeersList>{locator(address)}{"".join(locator(p) for p in peers)}</initialPeersList>
        </builtin>
      </rtps>
    </participant>
  </profiles>
</dds>
"""


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
