"""The operator: a kopf controller that turns FlowRuns into engine pods and back into status."""
