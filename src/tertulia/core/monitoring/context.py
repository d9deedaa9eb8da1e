"""What the code running now works for: the request (its id, its account once known) and the
recorder that keeps this process's monitoring records, carried in context variables so that
a log line written anywhere below a request can say which request and account it was for."""

from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tertulia.core.monitoring.recorder import Recorder


@dataclass
class RequestTrace:
    """One request's identity. Mutable, and shared by reference: the account is learnt after
    the trace is made (when the credential is checked), and whoever holds the trace sees it."""

    request_id: str
    account_id: str | None = None


_trace: ContextVar[RequestTrace | None] = ContextVar("tertulia_request_trace", default=None)
_recorder: ContextVar["Recorder | None"] = ContextVar("tertulia_recorder", default=None)


def current_trace() -> RequestTrace | None:
    return _trace.get()


def begin_trace(trace: RequestTrace) -> Token[RequestTrace | None]:
    return _trace.set(trace)


def end_trace(token: Token[RequestTrace | None]) -> None:
    _trace.reset(token)


def bind_account(account_id: str) -> None:
    """The request being served is this account's (its credential was just accepted)."""
    trace = _trace.get()
    if trace is not None:
        trace.account_id = account_id


def current_recorder() -> "Recorder | None":
    return _recorder.get()


def use_recorder(recorder: "Recorder | None") -> Token["Recorder | None"]:
    """Log records written from here on (and in tasks started from here) are kept by `recorder`.

    Set per request by the faces' middleware, and once by the runtime for the tasks it starts
    (jobs resumed at start): several apps may run in one process (the tests), each with its
    own recorder, and a record must reach its own app's only."""
    return _recorder.set(recorder)


def stop_using_recorder(token: Token["Recorder | None"]) -> None:
    _recorder.reset(token)
