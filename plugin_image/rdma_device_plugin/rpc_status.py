"""What ends a call on a plugin socket that cannot be answered: the refusals, their gRPC status codes, a
request that does not parse, and the rate at which refusals are logged (servicer.StatusInterceptor uses them).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from rdma_device_plugin.pools import AllocationError, MissingDeviceNodeError, UnknownDeviceError

# A status detail travels in an HTTP/2 header (grpc-go refuses a header list over 16 KiB) and is logged.
MAX_DETAIL_CHARS = 1024
# A client can send refused requests as fast as it likes: one log line per kind of refusal per window,
# then a count of those left out.
REFUSAL_LOG_WINDOW = 10.0


class RequestError(Exception):
    """A request this plugin will not serve, whatever the pool; str() is one paragraph saying why."""


class TooManyContainersError(RequestError):
    pass


class AnswerTooLargeError(RequestError):
    pass


class MalformedRequestError(RequestError):
    pass


# Looked up along the exception's MRO, so a new subclass without its own entry gets its base class's code;
# anything else is a bug, answered INTERNAL.
STATUS_OF_ERROR: dict[type[Exception], grpc.StatusCode] = {
    UnknownDeviceError: grpc.StatusCode.INVALID_ARGUMENT,
    MissingDeviceNodeError: grpc.StatusCode.FAILED_PRECONDITION,
    AllocationError: grpc.StatusCode.FAILED_PRECONDITION,
    AnswerTooLargeError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    RequestError: grpc.StatusCode.INVALID_ARGUMENT,
}


def status_of(error: Exception) -> grpc.StatusCode:
    return next(
        (STATUS_OF_ERROR[cls] for cls in type(error).__mro__ if cls in STATUS_OF_ERROR),
        grpc.StatusCode.INTERNAL,
    )


class _Malformed:
    """What a request that does not parse deserializes to: its handler answers INVALID_ARGUMENT."""

    def __init__(self, size: int) -> None:
        self.size = size


def tolerant(parse: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    # grpc answers a deserializer's exception with UNKNOWN and logs a traceback per request.
    def deserialize(data: bytes) -> Any:
        try:
            return parse(data)
        except DecodeError:
            return _Malformed(len(data))

    return deserialize


def check_parsed(rpc: str, request: object) -> None:
    if isinstance(request, _Malformed):
        raise MalformedRequestError(
            f"the {rpc} request ({request.size} bytes) is not a valid message of kubelet's device-plugin "
            "API v1beta1 (truncated, or a string field that is not UTF-8)"
        )


class RefusalLog:
    """Rate-limits log lines per kind of refusal: the first of a window is logged with the count of those
    left out since the last one logged."""

    def __init__(
        self, window: float = REFUSAL_LOG_WINDOW, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._window = window
        self._clock = clock
        self._next: dict[object, float] = {}
        self._left_out: Counter[object] = Counter()

    def admit(self, kind: object) -> int | None:
        """None if a line about `kind` is not to be logged now; else how many were left out before it."""
        now = self._clock()
        if now < self._next.get(kind, now):
            self._left_out[kind] += 1
            return None
        self._next[kind] = now + self._window
        return self._left_out.pop(kind, 0)
