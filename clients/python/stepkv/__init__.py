"""Python client of the stepkv API (``requests`` + ``msgpack``).

Example::

    from stepkv import Client
    kv = Client("http://127.0.0.1:8787", "dev-key-stepkv-0000000000000000")
    s = kv.open(model="tiny-gqa", policy={"name": "window", "params": {"recentTokens": 64}})
    reply = s.step({"text": "open the settings"})
"""
from .client import Client, Session, logits_of, retry_wait, MSGPACK, MEMORY_TYPE
from .control import Clock, ControlLoopStats, TickCommand, run_control_loop
from .errors import (
    Conflict,
    InvalidRequest,
    NotFound,
    PreconditionFailed,
    RateLimited,
    ServerError,
    StepkvError,
    StepkvNetworkError,
    StepkvProblem,
    StepkvTimeout,
    TooLarge,
    Unauthorized,
    Unprocessable,
    problem_error,
)

__version__ = "0.1.0"
__all__ = [
    "Client", "Session", "logits_of", "retry_wait", "MSGPACK", "MEMORY_TYPE",
    "Clock", "ControlLoopStats", "TickCommand", "run_control_loop",
    "Conflict", "InvalidRequest", "NotFound", "PreconditionFailed", "RateLimited", "ServerError",
    "StepkvError", "StepkvNetworkError", "StepkvProblem", "StepkvTimeout", "TooLarge",
    "Unauthorized", "Unprocessable", "problem_error",
]
