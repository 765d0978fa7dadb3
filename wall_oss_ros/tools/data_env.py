"""The data environment: where LeRobot's dataset package runs, beside (not inside) the project's environment.

`lerobot-dataset` needs Python ≥ 3.12, numpy < 2.3 and huggingface-hub < 2, which the policy's pinned torch /
transformers stack rules out; `make setup` builds `.venv-data` (Python 3.12, requirements/data.txt) with this
package installed, and the commands that write or read datasets run there as a child process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ENV_VAR = "WALL_OSS_ROS_DATA_PYTHON"  # the data environment's interpreter, where it is not .venv-data


def has_lerobot_dataset() -> bool:
    import importlib.util

    return importlib.util.find_spec("ledataset") is not None


def data_python() -> Path:
    """The interpreter of the data environment; a clear error where there is none."""
    configured = os.environ.get(ENV_VAR)
    checkout = Path(__file__).resolve().parents[2]
    candidate = Path(configured) if configured else checkout / ".venv-data" / "bin" / "python"
    if not candidate.is_file():
        where = f"{ENV_VAR}={configured}" if configured else str(candidate)
        raise FileNotFoundError(f"no LeRobot data environment at {where}: run `make setup` in the checkout (it "
                                f"builds .venv-data), or point {ENV_VAR} at a Python with lerobot-dataset and "
                                f"wall_oss_ros installed")
    return candidate


def run_module(module: str, argv: list[str]) -> int:
    """`python -m module argv` here when lerobot-dataset is importable, else in the data environment."""
    if has_lerobot_dataset():
        import importlib

        return int(importlib.import_module(module).main(argv))
    return subprocess.call([str(data_python()), "-m", module, *argv])


def read_dataset(root: Path, every: int = 1, max_frames: int | None = None) -> Iterator[tuple[dict, dict]]:
    """The header, then every k-th frame of a LeRobot dataset, as (arrays, meta) records (dataset_stream.py)."""
    from wall_oss_ros.tools.dataset_stream import LENGTH, decode_record

    argv = [str(root), "--every", str(every)] + ([] if max_frames is None else ["--max-frames", str(max_frames)])
    command = ([sys.executable] if has_lerobot_dataset() else [str(data_python())]) + \
        ["-m", "wall_oss_ros.tools.dataset_stream", *argv]
    with tempfile.TemporaryFile() as errors, \
            subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors) as child:  # a file: no pipe to fill
        try:
            while True:
                size = child.stdout.read(LENGTH.size)
                if len(size) < LENGTH.size:
                    break
                blob = child.stdout.read(LENGTH.unpack(size)[0])
                yield decode_record(blob)
        except BaseException:  # the reader stopped early (enough frames, an error): the child goes too
            child.kill()
            child.wait()
            raise
        if child.wait():
            errors.seek(0)
            lines = [line for line in errors.read().decode(errors="replace").splitlines() if line.strip()]
            raise ValueError(lines[-1].removeprefix("error: ") if lines else f"{root}: the dataset reader failed "
                             f"(exit {child.returncode})")
