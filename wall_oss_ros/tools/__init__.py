"""Command-line tools: diagnostics, checkpoint generation, evaluation, recording."""
