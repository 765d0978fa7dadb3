"""Control library: pure numpy/scipy code between a policy and a robot (no rclpy, no torch)."""
