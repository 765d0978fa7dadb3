"""Where the package's data files (config/, launch/) live: a source checkout or an installed share/."""

from __future__ import annotations

import sys
from pathlib import Path

PACKAGE = "wall_oss_ros"


def share_dir() -> Path:
    """Directory holding config/ and launch/: the checkout root, else <prefix>/share/wall_oss_ros."""
    here = Path(__file__).resolve()
    checkout = here.parents[2]
    if (checkout / "package.xml").is_file() and (checkout / "config").is_dir():
        return checkout
    # Installed by colcon or pip: <prefix>/lib/pythonX.Y/site-packages/wall_oss_ros/core/resources.py
    candidates = [here.parents[5] / "share" / PACKAGE, Path(sys.prefix) / "share" / PACKAGE]
    for candidate in candidates:
        if (candidate / "config").is_dir():
            return candidate
    tried = ", ".join(str(c) for c in [checkout, *candidates])
    raise FileNotFoundError(f"{PACKAGE}: no config/ directory found (looked in {tried})")


def config_path(*parts: str) -> Path:
    """Path of a file under config/, e.g. config_path("robots", "aloha_bimanual.yaml")."""
    return share_dir().joinpath("config", *parts)


def package_roots() -> list[Path]:
    """The share/ directories ROS-style packages are found in: cmeel's prefix inside site-packages (Python
    wheels such as example-robot-data) and every prefix on AMENT_PREFIX_PATH; the search path of a URDF's
    package:// references."""
    import os
    import sysconfig

    prefixes = [Path(sysconfig.get_paths()["purelib"]) / "cmeel.prefix"]
    prefixes += [Path(p) for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    return [prefix / "share" for prefix in prefixes]


def package_share(package: str) -> Path:
    """share/<package> of a ROS-style package installed as a Python wheel or on AMENT_PREFIX_PATH."""
    roots = package_roots()
    for root in roots:
        if (root / package).is_dir():
            return root / package
    raise FileNotFoundError(f"package {package!r}: no {package}/ in {', '.join(str(r) for r in roots)}")
