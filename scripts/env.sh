# Source this file (bash/zsh) for a shell with the development environment of wall_oss_ros:
# the venv, the colcon-built messages, and the project's loopback-only Fast DDS profile.
#   . scripts/env.sh
# Set WALL_OSS_ROS_DDS_PROFILE to use another Fast DDS profile (e.g. a network one for multi-host).

_wor_root="$(cd "$(dirname "${BASH_SOURCE[0]:-${(%):-%x}}")/.." && pwd)"
_wor_venv="${WALL_OSS_ROS_VENV:-$_wor_root/.venv}"
_wor_install="$_wor_root/install/wall_oss_ros"

if [ ! -x "$_wor_venv/bin/python" ] || [ ! -d "$_wor_install" ]; then
  echo "wall_oss_ros: run 'make setup' first (missing $_wor_venv or $_wor_install)" >&2
  return 1 2>/dev/null || exit 1
fi

export VIRTUAL_ENV="$_wor_venv"
case ":$PATH:" in *":$_wor_venv/bin:"*) ;; *) export PATH="$_wor_venv/bin:$PATH" ;; esac

_wor_pyver="$("$_wor_venv/bin/python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
_wor_site="$_wor_venv/lib/python$_wor_pyver/site-packages"

# Library path of the ROS wheels (what their start-up hook would set, so Python starts only once)
# plus this package's generated type support.
_wor_ld="$_wor_install/lib:$_wor_venv/lib"
for _d in "$_wor_site"/ros_*.libs; do [ -d "$_d" ] && _wor_ld="$_wor_ld:$_d"; done
export LD_LIBRARY_PATH="$_wor_ld${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export _ROS_WHEELS_BOOTSTRAP_COMPLETE=1

# Source modules first, then the generated messages; the package spans both (see __init__.py).
export PYTHONPATH="$_wor_root:$_wor_install/lib/python$_wor_pyver/site-packages${PYTHONPATH:+:$PYTHONPATH}"
export AMENT_PREFIX_PATH="$_wor_install:$_wor_venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$_wor_venv${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"

export RMW_IMPLEMENTATION=rmw_fastrtps_cpp
export FASTDDS_DEFAULT_PROFILES_FILE="${WALL_OSS_ROS_DDS_PROFILE:-$_wor_root/config/dds/fastdds_loopback.xml}"
# These override or defeat the profile's transports (measured: frames lost); the profile decides.
unset ROS_LOCALHOST_ONLY ROS_AUTOMATIC_DISCOVERY_RANGE FASTDDS_BUILTIN_TRANSPORTS
export MUJOCO_GL="${MUJOCO_GL:-egl}"

unset _wor_root _wor_venv _wor_install _wor_pyver _wor_site _wor_ld _d
