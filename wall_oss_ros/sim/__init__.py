"""Simulated robots (MuJoCo), without ROS: the sim node wraps them."""
