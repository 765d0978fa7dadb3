"""wall_oss_ros: ROS 2 deployment of the WALL-OSS vision-language-action model."""

# The generated messages (wall_oss_ros.msg) live in the colcon install tree while the hand-written
# modules may be imported from a source checkout: let the package span every wall_oss_ros directory
# on sys.path so both halves import as one package.
__path__ = __import__("pkgutil").extend_path(__path__, __name__)

__version__ = "0.1.0"
