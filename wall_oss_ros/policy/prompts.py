"""The prompt text both WALL-OSS families were trained with (wall-oss-flow / -fast and WALL-OSS-0.5 use the
same turns; 0.5 writes its state as text where <|propri|> stands, the flow family embeds it there).

  <|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n
  <|im_start|>user\\nObservation: <view>: <|vision_start|><|image_pad|><|vision_end|> …\\nInstruction: <task>
  \\nPredict the next action in robot action.\\nProprioception: <|propri|>\\n<|im_end|>\\n
  <|im_start|>assistant\\n<|action|> × horizon
"""

from __future__ import annotations

ACTION_TOKEN, PROPRI_TOKEN = "<|action|>", "<|propri|>"
IMAGE_BLOCK = "<|vision_start|><|image_pad|><|vision_end|>"
SYSTEM_TURN = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"


def _observation(views: list[str]) -> str:
    return "".join(f" {v}: {IMAGE_BLOCK}" for v in views)


def generation_prompt(views: list[str], instruction: str, proprioception: str = PROPRI_TOKEN) -> str:
    """The action prompt up to the assistant's turn: what wall-oss-fast continues with action tokens."""
    return (f"{SYSTEM_TURN}<|im_start|>user\nObservation:{_observation(views)}\nInstruction: {instruction}"
            f"\nPredict the next action in robot action.\nProprioception: {proprioception}\n<|im_end|>\n"
            "<|im_start|>assistant\n")


def prompt(views: list[str], instruction: str, horizon: int, proprioception: str = PROPRI_TOKEN) -> str:
    """The flow prompt: the assistant's turn is `horizon` <|action|> tokens the action expert denoises."""
    return generation_prompt(views, instruction, proprioception) + ACTION_TOKEN * horizon


def language_prompt(views: list[str], instruction: str) -> str:
    """The subtask (Uni-CoT) prompt: no proprioception, the assistant answers in language."""
    return (f"{SYSTEM_TURN}<|im_start|>user\nObservation:{_observation(views)}\nInstruction: {instruction}"
            "\nPredict the next action in language.\n<|im_end|>\n<|im_start|>assistant\n")
