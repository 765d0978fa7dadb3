"""WALL-OSS-0.5: per-expert attention and norms, the state written into the prompt as text (in progress:
the processor's state text and image sizing; no model yet, and the loaders refuse 0.5 checkpoints)."""
