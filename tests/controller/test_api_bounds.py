"""The operator's own bound on API requests in flight, with real threads and a slow call."""

from __future__ import annotations

import threading
import time

from headrace.controller.kube import Kube


def test_no_more_requests_in_flight_than_the_limit() -> None:
    kube = Kube(max_in_flight=3)
    lock = threading.Lock()
    in_flight = peak = 0

    def slow_request() -> None:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.05)
        with lock:
            in_flight -= 1

    threads = [threading.Thread(target=kube._call, args=(slow_request,)) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak == 3
