"""Policy runtime: torch models and backends that turn observations into action chunks (no rclpy)."""
