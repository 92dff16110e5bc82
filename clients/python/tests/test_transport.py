"""Retries, timeouts and typed problems over a scripted requests transport (no server)."""
import json
import unittest

import msgpack
import requests
from requests.adapters import BaseAdapter
from requests.models import Response

from stepkv import Client, Conflict, InvalidRequest, NotFound, PreconditionFailed, RateLimited, ServerError, StepkvNetworkError, StepkvTimeout, logits_of


class Scripted(BaseAdapter):
    """Answers each request from ``script(request, attempt)``: a Response or an exception to raise."""

    def __init__(self, script):
        super().__init__()
        self.script, self.seen = script, []

    def send(self, request, **kwargs):
        self.seen.append(request)
        out = self.script(request, len(self.seen) - 1)
        if isinstance(out, Exception):
            raise out
        out.request = request
        return out

    def close(self):
        pass


def reply(status, body, kind="application/msgpack", headers=None):
    r = Response()
    r.status_code = status
    r._content = msgpack.packb(body, use_bin_type=True) if kind == "application/msgpack" else json.dumps(body).encode() if "json" in kind else body
    r.headers["content-type"] = kind
    for k, v in (headers or {}).items():
        r.headers[k] = v
    return r


def problem(status, code, headers=None, **extra):
    return reply(status, {"type": "t", "title": "x", "status": status, "code": code, "detail": f"{code} detail", "requestId": "r1", **extra}, "application/problem+json", headers)


STEP = {"seq": 3, "action": {"type": "token", "token": 104, "text": "h", "logit": 1.0}, "memory": {"etag": '"3.3"'}}


def client(script, **kw):
    http = requests.Session()
    adapter = Scripted(script)
    http.mount("http://", adapter)
    return Client("http://kv.test/", "k" * 32, http=http, retry_delay=0.001, **kw), adapter


class TransportTest(unittest.TestCase):
    def test_msgpack_body_with_bytes_and_bearer(self):
        kv, a = client(lambda r, i: reply(200, STEP))
        self.assertEqual(kv.step("s_1", 3, {"image": b"\x89PNG", "instruction": "ok"})["seq"], 3)
        sent = a.seen[0]
        self.assertEqual(sent.url, "http://kv.test/v1/sessions/s_1/steps")
        self.assertEqual(sent.headers["authorization"], "Bearer " + "k" * 32)
        self.assertEqual(sent.headers["content-type"], "application/msgpack")
        self.assertEqual(msgpack.unpackb(sent.body)["observation"]["image"], b"\x89PNG")

    def test_json_body_sends_bytes_as_base64(self):
        kv, a = client(lambda r, i: reply(200, STEP, "application/json"), format="json")
        kv.step("s_1", 1, {"image": b"\x01\x02\x03", "instruction": "x"})
        self.assertEqual(json.loads(a.seen[0].body)["observation"]["image"], "AQID")

    def test_step_resent_with_same_seq_and_request_id(self):
        script = lambda r, i: requests.Timeout("slow") if i == 0 else requests.ConnectionError("reset") if i == 1 else reply(200, STEP)
        kv, a = client(script, timeout=0.05)
        self.assertEqual(kv.step("s_1", 3, {"text": "hi"})["seq"], 3)
        self.assertEqual([msgpack.unpackb(r.body)["seq"] for r in a.seen], [3, 3, 3])
        self.assertEqual(len({r.headers["x-request-id"] for r in a.seen}), 1)

    def test_gives_up_with_the_transport_error(self):
        kv, a = client(lambda r, i: requests.ConnectionError("refused"), retries=2)
        with self.assertRaises(StepkvNetworkError):
            kv.info("s_1")
        self.assertEqual(len(a.seen), 3)
        kv, a = client(lambda r, i: requests.Timeout("slow"), retries=1)
        with self.assertRaises(StepkvTimeout):
            kv.step("s_1", 1, {"text": "x"})

    def test_create_not_resent_after_timeout_but_after_429(self):
        kv, a = client(lambda r, i: requests.Timeout("slow"))
        with self.assertRaises(StepkvTimeout):
            kv.create_session()
        self.assertEqual(len(a.seen), 1)
        kv, a = client(lambda r, i: problem(429, "rate_limited", {"retry-after": "0"}) if i == 0 else reply(201, {"id": "s_2"}))
        self.assertEqual(kv.create_session(model="tiny-gqa")["id"], "s_2")
        self.assertEqual(len(a.seen), 2)

    def test_long_retry_after_raises_rate_limited(self):
        kv, a = client(lambda r, i: problem(429, "rate_limited", {"retry-after": "30"}))
        with self.assertRaises(RateLimited) as cm:
            kv.info("s_1")
        self.assertEqual(cm.exception.retry_after, 30.0)
        self.assertEqual(len(a.seen), 1)

    def test_typed_problems_not_retried(self):
        cases = [
            (problem(409, "seq_conflict", lastSeq=4), Conflict, lambda e: e.last_seq == 4),
            (problem(412, "precondition_failed", etag='"4.5"'), PreconditionFailed, lambda e: e.etag == '"4.5"'),
            (problem(400, "invalid_request", errors=[{"path": "seq", "message": "bad"}]), InvalidRequest, lambda e: e.errors[0]["path"] == "seq"),
            (problem(404, "unknown_session"), NotFound, lambda e: e.request_id == "r1" and e.status == 404),
        ]
        for res, cls, check in cases:
            kv, a = client(lambda r, i, res=res: res)
            with self.assertRaises(cls) as cm:
                kv.step("s_1", 5, {"text": "x"})
            self.assertTrue(check(cm.exception), cm.exception.problem)
            self.assertEqual(len(a.seen), 1)

    def test_5xx_retried_and_non_problem_bodies_typed(self):
        kv, a = client(lambda r, i: reply(502, b"<html>bad gateway</html>", "text/html"), retries=1)
        with self.assertRaises(ServerError) as cm:
            kv.step("s_1", 1, {"text": "x"})
        self.assertEqual(cm.exception.code, "http_502")
        self.assertEqual(len(a.seen), 2)

    def test_logits_of_bytes_and_numbers(self):
        import struct
        data = struct.pack("<3f", 0.5, -1.0, 2.0)
        self.assertEqual(logits_of({"logits": {"dims": [1, 3], "data": data}}), [0.5, -1.0, 2.0])
        self.assertEqual(logits_of({"logits": {"dims": [1, 3], "data": [0.5, -1, 2]}}), [0.5, -1.0, 2.0])


if __name__ == "__main__":
    unittest.main()
