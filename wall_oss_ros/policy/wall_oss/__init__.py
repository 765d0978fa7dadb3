"""WALL-OSS (Qwen2.5-VL backbone + flow-matching action expert): configuration, model, processor, checkpoints."""
