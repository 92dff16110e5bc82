"""A control loop at a fixed rate over stepkv steps, with deadline-miss accounting.

The same rules as the TypeScript client's ``runControlLoop`` (``clients/ts/control-loop.ts``) and
the demo's robot client. Rate R Hz, period T = 1/R s. Tick k: observe, send the step, wait for the
reply (latency L). The reply's action is a chunk (a list: chunk[i] is for tick k + i; a single
action is a chunk of one).

- L ≤ T: on time; chunk[0] runs for tick k.
- L > T: a deadline miss. n = ceil(L / T) − 1 ticks passed without the reply: they run the previous
  chunk's next unused actions, then holds (``action=None``); the late chunk runs time-aligned,
  chunk[n] for tick k + n (a hold if n ≥ its length).

The next request leaves at tick k + n + 1, at its wall-clock start. ``realtime=False`` sends one
request per tick as fast as replies come, chunk[0] each (misses are still counted).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional


@dataclass
class TickCommand:
    """What runs at one tick: ``action`` (None: hold) and its ``source``: ``fresh`` (this tick's
    reply or its time-aligned late chunk), ``leftover`` (the previous chunk while a reply was late)
    or ``hold``."""

    tick: int
    action: Any
    source: str


@dataclass
class ControlLoopStats:
    """Ticks run, steps sent, deadline misses, ticks without a fresh action, latencies (ms)."""

    ticks: int = 0
    steps: int = 0
    deadline_misses: int = 0
    held_ticks: int = 0
    latency_ms: List[float] = field(default_factory=list)

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile of the latencies (ms; 0 with no step)."""
        if not self.latency_ms:
            return 0.0
        xs = sorted(self.latency_ms)
        return xs[min(len(xs) - 1, max(0, math.ceil(p / 100 * len(xs)) - 1))]


class Clock:
    """Monotonic seconds and sleep; tests pass a virtual one."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


def run_control_loop(
    rate_hz: float,
    observe: Callable[[int], Any],
    step: Callable[[Any], dict],
    act: Callable[[TickCommand], None],
    max_ticks: Optional[int] = None,
    realtime: bool = True,
    clock: Optional[Clock] = None,
    on_deadline_miss: Optional[Callable[[int, float, int], None]] = None,
) -> ControlLoopStats:
    """Runs until ``observe`` returns None or ``max_ticks`` ticks ran.

    Args:
        rate_hz: control rate (> 0).
        observe: ``observe(tick)`` → the observation to send, or None to stop.
        step: ``step(observation)`` → a step reply, e.g. ``session.step``; exceptions end the loop.
        act: runs one tick's :class:`TickCommand`, in tick order, exactly once per tick.
        on_deadline_miss: ``(tick, latency_ms, ticks_passed)`` for each late reply.

    Returns:
        :class:`ControlLoopStats`.

    Raises:
        ValueError: if ``rate_hz`` is not > 0.
    """
    if not rate_hz > 0:
        raise ValueError(f"rate_hz must be > 0, got {rate_hz}")
    period = 1.0 / rate_hz
    clock = clock or Clock()
    limit = math.inf if max_ticks is None else max_ticks
    stats = ControlLoopStats()
    plan: Optional[List[Any]] = None
    used = 0

    def leftover(tick: int) -> TickCommand:
        nonlocal used
        stats.held_ticks += 1
        if plan is not None and used < len(plan):
            used += 1
            return TickCommand(tick, plan[used - 1], "leftover")
        return TickCommand(tick, None, "hold")

    tick = 0
    while tick < limit:
        start = clock.now()
        observation = observe(tick)
        if observation is None:
            break
        reply = step(observation)
        latency = clock.now() - start
        stats.latency_ms.append(latency * 1000)
        late = latency > period * (1 + 1e-9)  # float seconds: 100 ms measured as 100.00000000000003 is on time
        if late:
            stats.deadline_misses += 1
        passed = int(min(limit - tick - 1, max(0, math.ceil(latency / period - 1e-9) - 1))) if realtime else 0
        for j in range(passed):
            act(leftover(tick + j))
        action = reply["action"]
        plan, used = (action if isinstance(action, list) else [action]), passed
        at = tick + passed
        if used < len(plan):
            used += 1
            act(TickCommand(at, plan[used - 1], "fresh"))
        else:
            stats.held_ticks += 1
            act(TickCommand(at, None, "hold"))
        if late and on_deadline_miss:
            on_deadline_miss(tick, latency * 1000, passed)
        tick = at + 1
        if realtime:
            clock.sleep(start + (passed + 1) * period - clock.now())
    stats.ticks = tick
    stats.steps = len(stats.latency_ms)
    return stats
