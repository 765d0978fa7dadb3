"""`wall-oss-ros record OUT`: record a robot contract's topics (plus chunks, status, diagnostics) to a bag."""

from __future__ import annotations

import os
import time
from pathlib import Path

# Topics our nodes publish reliably: read reliably so a busy recorder loses none.
RELIABLE_TOPICS = ("/policy_node/action_chunk", "/policy_node/subtask", "/executor_node/status", "/diagnostics",
                   "/instruction", "/estop")


def run_record(out: Path, contract_ref: str, storage: str = "mcap", duration_s: float = 0.0,
               extra: dict[str, str] | None = None, use_sim_time: bool = False) -> int:
    import rclpy
    from rclpy.parameter import Parameter
    from rich.live import Live
    from rich.table import Table

    from wall_oss_ros.core.contract import contract_file, resolve_contract
    from wall_oss_ros.ros.dds import ros_environment
    from wall_oss_ros.ros.shutdown import until_shutdown
    from wall_oss_ros.tools.bag_record import BagRecorder, contract_topics

    contract = resolve_contract(contract_ref)
    if out.exists():
        raise FileExistsError(f"{out} exists: choose a new bag path")
    for key, value in ros_environment().items():
        os.environ.setdefault(key, value)
    topics = {**contract_topics(contract), **(extra or {})}
    rclpy.init()
    node = rclpy.create_node("wall_oss_ros_record", parameter_overrides=[Parameter("use_sim_time", value=use_sim_time)])
    recorder = BagRecorder(node, out, topics, storage, reliable=RELIABLE_TOPICS,
                           contract_yaml=contract_file(contract_ref).read_text())
    started = time.monotonic()

    def table() -> Table:
        t = Table(title=f"recording {out} ({storage}) for {time.monotonic() - started:.0f} s — Ctrl-C to stop")
        t.add_column("topic")
        t.add_column("messages", justify="right")
        for topic, n in recorder.counts.items():
            t.add_row(topic, str(n))
        return t

    try:
        with until_shutdown(), Live(table(), refresh_per_second=2) as live:
            while duration_s <= 0 or time.monotonic() - started < duration_s:
                rclpy.spin_once(node, timeout_sec=0.1)
                live.update(table())
    finally:
        audit = recorder.close_with_provenance()  # while the graph's nodes still answer for their parameters
        node.destroy_node()
        rclpy.try_shutdown()
    from wall_oss_ros.tools.provenance import audit_table

    print("\n".join(audit_table(audit)))
    print(f"bag: {out} ({sum(recorder.counts.values())} messages; checkpoint, instructions, parameters and this "
          "audit in its metadata)")
    return 0
