"""The control loop on virtual time (schedules worked by hand, as in test/clients/control-loop.test.ts)."""
import unittest

from stepkv import TickCommand, run_control_loop


class VirtualClock:
    def __init__(self):
        self.t = 0.0

    def now(self):
        return self.t

    def sleep(self, seconds):
        self.t += max(0.0, seconds)


def stepper(clock, latencies_ms, chunk=4):
    sent = []

    def step(_observation):
        n = len(sent)
        sent.append(round(clock.t * 1000))
        clock.t += latencies_ms[n] / 1000
        return {"action": [f"{n}.{j}" for j in range(chunk)]}

    return step, sent


class ControlLoopTest(unittest.TestCase):
    def test_on_time_replies_run_chunk0_each_tick(self):
        clock = VirtualClock()
        step, sent = stepper(clock, [30, 40, 100])
        ran = []
        stats = run_control_loop(10, lambda t: t, step, ran.append, max_ticks=3, clock=clock)
        self.assertEqual([(c.tick, c.action, c.source) for c in ran], [(0, "0.0", "fresh"), (1, "1.0", "fresh"), (2, "2.0", "fresh")])
        self.assertEqual(sent, [0, 100, 200])
        self.assertEqual((stats.ticks, stats.steps, stats.deadline_misses, stats.held_ticks), (3, 3, 0, 0))

    def test_late_replies_leftovers_holds_and_time_aligned_chunks(self):
        # 50 ms → 0.0 at tick 0. 350 ms → ticks 1–3 run 0.1–0.3, 1.3 at tick 4. Sent at 500:
        # 620 ms → ticks 5–10 hold (chunk 1 used up), chunk 2 is stale at index 6 → tick 11 holds.
        clock = VirtualClock()
        step, sent = stepper(clock, [50, 350, 620])
        ran, misses = [], []
        stats = run_control_loop(10, lambda t: t if t < 12 else None, step, ran.append, clock=clock,
                                 on_deadline_miss=lambda tick, ms, passed: misses.append(passed))
        self.assertEqual(sent, [0, 100, 500])
        self.assertEqual([f"{c.tick}:{c.action or '-'}:{c.source[0]}" for c in ran], [
            "0:0.0:f", "1:0.1:l", "2:0.2:l", "3:0.3:l", "4:1.3:f",
            "5:-:h", "6:-:h", "7:-:h", "8:-:h", "9:-:h", "10:-:h", "11:-:h",
        ])
        self.assertEqual((stats.ticks, stats.steps, stats.deadline_misses, stats.held_ticks), (12, 3, 2, 10))
        self.assertEqual(misses, [3, 6])

    def test_not_realtime_and_single_actions(self):
        clock = VirtualClock()
        step, sent = stepper(clock, [250, 20])
        ran = []
        stats = run_control_loop(10, lambda t: t, step, ran.append, max_ticks=2, realtime=False, clock=clock)
        self.assertEqual([c.action for c in ran], ["0.0", "1.0"])
        self.assertEqual(stats.deadline_misses, 1)
        ran = []
        run_control_loop(5, lambda t: t, lambda o: {"action": {"type": "click"}}, ran.append, max_ticks=2, clock=VirtualClock())
        self.assertEqual([c.action for c in ran], [{"type": "click"}] * 2)
        self.assertIsInstance(ran[0], TickCommand)

    def test_rate_must_be_positive(self):
        with self.assertRaises(ValueError):
            run_control_loop(0, lambda t: t, lambda o: {}, lambda c: None)


if __name__ == "__main__":
    unittest.main()
