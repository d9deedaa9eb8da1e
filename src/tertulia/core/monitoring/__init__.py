"""Monitoring: request records and account logs kept in the shared database, the figures and
logs each account may read of them, and the Prometheus instruments for operators."""

from tertulia.core.monitoring.access import sees_the_server
from tertulia.core.monitoring.context import (
    RequestTrace,
    begin_trace,
    bind_account,
    current_trace,
    end_trace,
    stop_using_recorder,
    use_recorder,
)
from tertulia.core.monitoring.figures import Figures, figures
from tertulia.core.monitoring.log_capture import install_log_capture, log_failure
from tertulia.core.monitoring.logs import LEVELS, LogQuery, list_logs, store_log
from tertulia.core.monitoring.recorder import FinishedRequest, Recorder

__all__ = [
    "LEVELS",
    "Figures",
    "FinishedRequest",
    "LogQuery",
    "Recorder",
    "RequestTrace",
    "begin_trace",
    "bind_account",
    "current_trace",
    "end_trace",
    "figures",
    "install_log_capture",
    "list_logs",
    "log_failure",
    "sees_the_server",
    "stop_using_recorder",
    "store_log",
    "use_recorder",
]
