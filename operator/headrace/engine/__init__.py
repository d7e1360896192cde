"""The engine: runs flows and tasks, orchestrated on a dedicated thread."""
