"""The executor node's ~/run_policy action server (action/RunPolicy.action): a task as a goal, with feedback,
a cancel that halts smoothly and a result that says why it ended. Wiring only; the goal's bookkeeping is
core.run_goal.

Everything runs on the node's one executor thread: goals are accepted in their callbacks, and the status
timer (on_status) publishes feedback and ends goals, so the control timer is never blocked. The execute
callback only awaits the goal's end.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.action.server import ServerGoalHandle
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.task import Future
from std_msgs.msg import String

from wall_oss_ros.action import RunPolicy
from wall_oss_ros.core.executor import Executor
from wall_oss_ros.core.run_goal import (
    END_CANCELED,
    END_DURATION,
    END_PREEMPTED,
    END_SHUTDOWN,
    ExecutorCounts,
    RunGoal,
    RunRequest,
)

SMOOTH_ENDS = (END_DURATION, END_CANCELED, END_SHUTDOWN)  # the server halts the robot, then ends the goal


@dataclass
class _Active:
    handle: ServerGoalHandle
    goal: RunGoal
    stopping: tuple[int, str] | None = None  # (END_*, text) once a smooth halt for the end has begun
    subtask: str = field(default="")
    listeners: int = 0  # subscribers of the instruction topic when it was last published


def counts(core: Executor, now: float) -> ExecutorCounts:
    return ExecutorCounts(now, core.state, core.executed_plan_s, core.chunks_accepted,
                          {k.value: n for k, n in core.counters.items()}, core.last_fault)


class RunPolicyServer:
    def __init__(self, node: Node, core: Executor, now, preempt: bool, subtask_topic: str,  # noqa: ANN001
                 instruction_topic: str = "/instruction") -> None:
        """now: the node's clock in seconds; preempt: a new goal replaces the running one (else refused)."""
        self.node, self.core, self.now, self.preempt = node, core, now, preempt
        self.active: _Active | None = None
        self._results: dict[int, Future] = {}  # per goal handle: its result, once it has ended
        reliable = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        # Created with the first goal: a bag replay refuses to run while anything else publishes /instruction.
        self._instruction_args = (String, instruction_topic, reliable)
        self._instruction_pub = None
        node.create_subscription(String, subtask_topic, self._on_subtask, reliable)
        self._server = ActionServer(node, RunPolicy, "~/run_policy", execute_callback=self._execute,
                                    goal_callback=self._on_goal, handle_accepted_callback=self._on_accepted,
                                    cancel_callback=lambda _handle: CancelResponse.ACCEPT)

    @property
    def _instruction(self):  # noqa: ANN202 - rclpy Publisher
        if self._instruction_pub is None:
            self._instruction_pub = self.node.create_publisher(*self._instruction_args)
        return self._instruction_pub

    def _on_subtask(self, msg: String) -> None:
        if self.active is not None:
            self.active.subtask = msg.data

    # ---------------------------------------------------------------- goals
    def _on_goal(self, request: RunPolicy.Goal) -> GoalResponse:
        problem = RunRequest(request.instruction, request.duration_s, request.speed_scale).problem()
        if not problem and self.active is not None and not self.preempt:
            problem = "a goal is running and run_policy_preempt is false"
        if problem:
            self.node.get_logger().warning(f"run_policy goal refused: {problem}")
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _on_accepted(self, handle: ServerGoalHandle) -> None:
        if self.active is not None:
            self._end(END_PREEMPTED, "preempted by a newer goal")
        request = RunRequest(handle.request.instruction, handle.request.duration_s, handle.request.speed_scale)
        if request.speed_scale > 0.0:
            self.core.set_speed_scale(request.speed_scale)
        now = self.now()
        goal = RunGoal(request, counts(self.core, now), self.core.contract.dt_s,
                       request.speed_scale or self.core.timing.speed_scale)
        self.active = _Active(handle, goal)
        self._instruction.publish(String(data=request.instruction))
        self.active.listeners = self._instruction.get_subscription_count()
        started, text = self.core.start(now)
        self.node.get_logger().info(f"run_policy: {request.instruction!r} ({text})")
        handle.execute()
        if not started:
            self._end(*goal.ending(counts(self.core, now)) or (END_SHUTDOWN, f"the executor did not start: {text}"))

    async def _execute(self, handle: ServerGoalHandle) -> RunPolicy.Result:
        done = self._results.setdefault(id(handle), Future())
        try:
            return await done
        finally:
            self._results.pop(id(handle), None)

    # ---------------------------------------------------------------- each status period
    def on_status(self) -> None:
        active = self.active
        if active is None:
            return
        listeners = self._instruction.get_subscription_count()
        if listeners > active.listeners:  # a policy that (re)started during the goal gets its task too
            self._instruction.publish(String(data=active.goal.request.instruction))
        active.listeners = listeners
        now = self.now()
        c = counts(self.core, now)
        if active.stopping is None:
            ending = active.goal.ending(c)
            if active.handle.is_cancel_requested:
                ending = (END_CANCELED, "cancelled by the client")
            if ending is not None and ending[0] in SMOOTH_ENDS:
                self.core.pause(True, now)  # the limiter brakes within the limits
                active.stopping = ending
            elif ending is not None:
                self._end(*ending)
                return
        if active.stopping is not None and self.core.limiter.stopped():
            self._end(*active.stopping)
            return
        p = active.goal.progress(c)
        active.handle.publish_feedback(RunPolicy.Feedback(
            state=int(self.core.state), status_code=int(self.core.status_code), elapsed_s=p.elapsed_s,
            progress=p.progress, steps_executed=p.steps_executed, steps_total=p.steps_total,
            chunks_accepted=p.chunks_accepted, subtask=active.subtask, interventions=p.interventions,
            last_intervention=p.last_intervention))

    def shutdown(self) -> None:
        """The node deactivates or shuts down: the executor halts; the goal ends now."""
        if self.active is not None:
            self._end(END_SHUTDOWN, "the executor was deactivated or shut down")

    def _end(self, reason: int, text: str) -> None:
        active, self.active = self.active, None
        p = active.goal.progress(counts(self.core, self.now()))
        result = RunPolicy.Result(reason=reason, text=text, elapsed_s=p.elapsed_s, steps_executed=p.steps_executed,
                                  chunks_accepted=p.chunks_accepted, interventions=p.interventions)
        if reason == END_CANCELED:
            active.handle.canceled()
        elif reason == END_DURATION:
            active.handle.succeed()
        else:
            active.handle.abort()
        if reason != END_PREEMPTED:
            self._instruction.publish(String(data=""))  # the task is over: the policy waits for the next one
        self.node.get_logger().info(f"run_policy ended: {text}")
        self._results.setdefault(id(active.handle), Future()).set_result(result)  # what _execute awaits

    def destroy(self) -> None:
        self._server.destroy()
