"""ROS 2 nodes and message conversions: wiring only, no control math."""
