"""How tests and benchmarks start Debian's Chromium: headless, and quiet on a closed network."""

from __future__ import annotations

import os

CHROMIUM = os.environ.get("HEADRACE_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps dialling out, which this machine's
# closed network refuses many times over.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
