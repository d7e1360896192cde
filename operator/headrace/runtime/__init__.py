"""What the running code can ask about itself: `headrace.runtime.flow_run.id` and friends.

Each attribute is read when accessed, so it is correct in whichever run asks. Outside a run the
values are empty, as are the deployment's when the flow is not run from a Deployment.
"""

from headrace.runtime import deployment, flow_run, task_run

__all__ = ["deployment", "flow_run", "task_run"]
