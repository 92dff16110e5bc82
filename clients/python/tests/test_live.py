"""Against a running stepkv (``STEPKV_URL``, key ``STEPKV_KEY``; ``npm test`` starts wrangler dev
for them, test/e2e/python-client.test.ts). Skipped without ``STEPKV_URL`` (the vitest e2e test
fails on a skip)."""
import os
import unittest

from stepkv import Client, Conflict, InvalidRequest, NotFound, PreconditionFailed, logits_of, run_control_loop

URL = os.environ.get("STEPKV_URL")
KEY = os.environ.get("STEPKV_KEY", "dev-key-stepkv-0000000000000000")
WINDOW = {"name": "window", "params": {"sinkTokens": 4, "recentTokens": 48}}


@unittest.skipUnless(URL, "STEPKV_URL is not set (run through npm test, or against npm run dev)")
class LiveTest(unittest.TestCase):
    def setUp(self):
        self.kv = Client(URL, KEY)

    def test_msgpack_and_json_agree_and_a_resent_seq_replays(self):
        a = self.kv.open(policy=WINDOW)
        b = Client(URL, KEY, format="json").open(policy=WINDOW)
        for text in ["open the settings", "toggle wifi", "press back"]:
            ra = a.step({"text": text}, {"returnLogits": True})
            rb = b.step({"text": text}, {"returnLogits": True})
            self.assertEqual(logits_of(ra), logits_of(rb))
            self.assertEqual(ra["action"], rb["action"])
        again = self.kv.step(a.id, 3, {"text": "not run"})
        self.assertEqual(again["memory"]["etag"], self.kv.info(a.id)["etag"])
        self.assertEqual(a.seq, 3)

    def test_typed_problems(self):
        s = self.kv.open(policy=WINDOW)
        s.step({"text": "one"})
        with self.assertRaises(Conflict) as cm:
            self.kv.step(s.id, 5, {"text": "x"})
        self.assertEqual((cm.exception.code, cm.exception.last_seq), ("seq_conflict", 1))
        with self.assertRaises(NotFound):
            self.kv.info("s_" + "f" * 32)
        with self.assertRaises(InvalidRequest) as cm:
            self.kv.create_session(policy={"name": "window", "params": {"recentTokens": -3}})
        self.assertEqual(cm.exception.code, "invalid_policy")
        with self.assertRaises(InvalidRequest) as cm:
            s.step({"text": 5})
        self.assertEqual(cm.exception.errors[0]["path"], "observation.text")
        blob, etag = self.kv.export_memory(s.id)
        s.step({"text": "two"})
        with self.assertRaises(PreconditionFailed) as cm:
            self.kv.import_memory(s.id, blob, etag)
        self.assertEqual(cm.exception.etag, s.etag)
        self.assertEqual(self.kv.import_memory(s.id, blob, s.etag)["seq"], 1)

    def test_lifecycle(self):
        s = self.kv.open(policy=WINDOW, idleTtlSeconds=600)
        self.assertEqual(s.info["idleTtlSeconds"], 600)
        s.step({"text": "screen 1"})
        s.step({"text": "screen 2"})
        self.assertEqual(s.snapshot("two")["seq"], 2)
        third = s.step({"text": "screen 3"}, {"returnLogits": True})
        s.rollback("two")
        self.assertEqual(s.seq, 2)
        redo = s.step({"text": "screen 3"}, {"returnLogits": True})
        self.assertEqual(logits_of(redo), logits_of(third))
        f = s.fork("two")
        self.assertEqual(f.seq, 2)
        self.assertNotEqual(f.id, s.id)
        s.reconfigure({"name": "window", "params": {"sinkTokens": 4, "recentTokens": 8}})
        self.assertEqual(s.step({"text": "screen 4"})["memory"]["tokensPerLayer"][0], 12)
        with self.assertRaises(Conflict):
            s.snapshot("two")
        self.assertEqual([x["name"] for x in self.kv.snapshots(s.id)["snapshots"]], ["two"])
        s.reset()
        self.assertEqual(s.seq, 0)
        self.assertEqual(s.step({"text": "new episode"})["seq"], 1)
        f.delete()
        s.delete()
        with self.assertRaises(NotFound):
            self.kv.info(s.id)

    def test_control_loop_over_http(self):
        s = self.kv.open(policy=WINDOW)
        ran = []
        stats = run_control_loop(20, lambda t: {"text": f"tick {t}"}, s.step, ran.append, max_ticks=6)
        self.assertEqual([c.tick for c in ran], list(range(stats.ticks)))
        self.assertEqual(stats.ticks, 6)
        self.assertEqual(stats.steps, s.seq)
        self.assertEqual(stats.deadline_misses, sum(1 for l in stats.latency_ms if l > 50))
        s.delete()


if __name__ == "__main__":
    unittest.main()
