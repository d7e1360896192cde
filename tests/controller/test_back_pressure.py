"""An API server that is only busy is asked again later, not reported as a problem."""

from __future__ import annotations

from kubernetes.client.exceptions import ApiException

from headrace.controller.kube import MAX_RETRY_AFTER_SECONDS, retry_after


class Answer:
    """The parts of the client's response that ApiException reads."""

    def __init__(self, status: int, headers: dict[str, str]) -> None:
        self.status, self.reason, self.data = status, "refused", b'{"message": "busy"}'
        self.headers = headers


def refused(status: int, **headers: str) -> ApiException:
    return ApiException(
        http_resp=Answer(status, {k.replace("_", "-"): v for k, v in headers.items()})
    )


def test_too_many_requests_waits_what_the_server_asks() -> None:
    assert retry_after(refused(429, Retry_After="2")) == 2.0
    assert retry_after(refused(429)) == 1.0  # no header: a second
    assert retry_after(refused(429, Retry_After="soon")) == 1.0
    assert retry_after(refused(429, Retry_After="3600")) == MAX_RETRY_AFTER_SECONDS


def test_a_503_is_back_pressure_only_with_retry_after() -> None:
    assert retry_after(refused(503, Retry_After="1")) == 1.0
    assert retry_after(refused(503)) is None


def test_refusals_of_the_request_itself_are_not_back_pressure() -> None:
    for status in (400, 403, 404, 409, 422, 500):
        assert retry_after(refused(status, Retry_After="1")) is None
