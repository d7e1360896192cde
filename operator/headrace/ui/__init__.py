"""The web UI: run history, the flow-run graph (stage and timeline layouts), results, logs.

`headrace ui` serves it (`headrace.ui.server`); the front end's source is in `ui/` at the
repository root and its build is committed under `static/`, so installing needs no npm.
"""
