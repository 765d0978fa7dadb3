"""Prompt view names of cameras, as LeRobot's wall_x derives them from dataset camera keys.

A fine-tuned checkpoint learnt its views under these names ("observation.images.top" is "top view"
in its prompts), so a contract that names its camera like the dataset gets the prompt the model saw.
"""

from __future__ import annotations

LEROBOT_IMAGE_PREFIX = "observation.images."

# LeRobot wall_x constant.CAMERA_NAME_MAPPING: upstream wall-x camera keys → prompt view names.
KNOWN_VIEWS = {
    "face_view": "front view",
    "left_wrist_view": "left wrist view",
    "right_wrist_view": "right wrist view",
    "move1_view": "move view",
    "move2_view": "move view",
    "wall_view": "wall view",
    "top_view": "top view",
}


def view_name(camera_key: str) -> str:
    """'observation.images.top' → 'top view'; 'face_view' → 'front view'; 'cam_high_view' → 'cam high view'."""
    key = camera_key.removeprefix(LEROBOT_IMAGE_PREFIX)
    if key in KNOWN_VIEWS:
        return KNOWN_VIEWS[key]
    return key.replace("_", " ") if "view" in key else f"{key} view"
