"""The stepkv HTTP client over ``requests`` and ``msgpack``.

Bodies and replies are msgpack (default; images travel as ``bytes``) or JSON (``bytes`` sent as
base64). Each attempt has a timeout; retryable failures are retried with exponential backoff — a
step is resent with the **same seq**, which the server answers with the stored reply if the first
attempt already ran (README, seq rules). Problem replies raise typed exceptions (``errors.py``).
"""
from __future__ import annotations

import base64
import json
import struct
import time
import uuid
from typing import Any, Dict, List, Optional

import msgpack
import requests

from .errors import (
    RateLimited,
    StepkvNetworkError,
    StepkvProblem,
    StepkvTimeout,
    problem_error,
)

MSGPACK = "application/msgpack"
MEMORY_TYPE = "application/x-stepkv-memory"
_RETRY_STATUS = {429, 500, 502, 503, 504}

# Retry modes: "idempotent" (steps with the same seq, GET, calls guarded by If-Match) retries
# timeouts, connection failures, 429 and 5xx; "refused" (create, fork, snapshot, import, delete)
# only a 429 rate_limited, where the server surely did nothing.
IDEMPOTENT = "idempotent"
REFUSED = "refused"


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def logits_of(reply: Dict[str, Any]) -> Optional[List[float]]:
    """The logits of a step reply (sent with ``options={"returnLogits": True}``) as a flat list of
    floats ``[S × vocab]`` (row-major; ``reply["logits"]["dims"]`` gives S and vocab): msgpack sends
    little-endian float32 bytes, JSON a number list."""
    logits = reply.get("logits")
    if logits is None:
        return None
    data = logits["data"]
    if isinstance(data, (bytes, bytearray)):
        return list(struct.unpack(f"<{len(data) // 4}f", data))
    return [float(x) for x in data]


def retry_wait(error: Exception, mode: str, backoff: float) -> Optional[float]:
    """Seconds to wait before retrying after ``error`` under ``mode``, or None (not retried)."""
    if isinstance(error, StepkvProblem):
        if error.status not in _RETRY_STATUS:
            return None
        if error.status == 429:
            if error.code != "rate_limited":
                return None  # session_limit: only a DELETE frees a slot
            after = getattr(error, "retry_after", None)
            return max(backoff, after or 0.0)
        if error.code == "memory_signing_unconfigured":
            return None
        return backoff if mode == IDEMPOTENT else None
    if isinstance(error, (StepkvTimeout, StepkvNetworkError)):
        return backoff if mode == IDEMPOTENT else None
    return None


class Client:
    """The stepkv API.

    Args:
        base_url: where the Worker is, e.g. ``http://127.0.0.1:8787``.
        api_key: the bearer key.
        format: ``"msgpack"`` (default) or ``"json"``.
        timeout: per-attempt timeout in seconds (default 30).
        retries: extra attempts after a retryable failure (default 2).
        retry_delay: first backoff in seconds, doubled per attempt (default 0.1).
        max_retry_delay: longest wait before a retry, also for Retry-After (default 5 s); a longer
            Retry-After raises :class:`~stepkv.errors.RateLimited` instead of waiting.
        http: a ``requests.Session`` to reuse (keep-alive); default a new one.

    Every method raises a :class:`~stepkv.errors.StepkvProblem` subclass for a problem reply,
    :class:`~stepkv.errors.StepkvTimeout` or :class:`~stepkv.errors.StepkvNetworkError` when no
    reply came after the retries.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        format: str = "msgpack",
        timeout: float = 30.0,
        retries: int = 2,
        retry_delay: float = 0.1,
        max_retry_delay: float = 5.0,
        http: Optional[requests.Session] = None,
    ):
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        if format not in ("msgpack", "json"):
            raise ValueError(f"format must be 'msgpack' or 'json', got {format!r}")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.format = format
        self.timeout = timeout
        self.retries = retries
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.http = http or requests.Session()

    # ── API ──────────────────────────────────────────────────────────────────────────────────
    def models(self) -> Dict[str, Any]:
        """``GET /v1/models``: ``{"models": [manifest, …]}``."""
        return self._call("GET", "/v1/models", mode=IDEMPOTENT)

    def create_session(self, **request: Any) -> Dict[str, Any]:
        """``POST /v1/sessions`` → session info. Keywords: ``model``, ``policy`` (``{"name", "params"}``),
        ``memoryDtype``, ``kivi``, ``idleTtlSeconds``, ``backend``. Resent only when refused (429)."""
        return self._call("POST", "/v1/sessions", body=request, mode=REFUSED)

    def open(self, **request: Any) -> "Session":
        """Creates a session and returns a :class:`Session` that numbers its steps."""
        return Session(self, self.create_session(**request))

    def attach(self, session_id: str) -> "Session":
        """A :class:`Session` for an existing id (its seq continues from the server's)."""
        return Session(self, self.info(session_id))

    def info(self, session_id: str) -> Dict[str, Any]:
        """``GET /v1/sessions/:id``: policy, seq, etag, idleTtlSeconds, memory summary."""
        return self._call("GET", f"/v1/sessions/{session_id}", mode=IDEMPOTENT)

    def step(self, session_id: str, seq: int, observation: Dict[str, Any], options: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """``POST /v1/sessions/:id/steps``: runs step ``seq`` (the first is 1); resent with the same seq.

        Raises:
            Conflict: ``seq_conflict`` when seq is neither the next one nor the last one (replayed).
        """
        body: Dict[str, Any] = {"seq": seq, "observation": observation}
        if options:
            body["options"] = options
        return self._call("POST", f"/v1/sessions/{session_id}/steps", body=body, mode=IDEMPOTENT)

    def export_memory(self, session_id: str):
        """``GET /v1/sessions/:id/memory`` → ``(blob: bytes, etag: str)``, the blob signed for the tenant."""
        return self._call("GET", f"/v1/sessions/{session_id}/memory", mode=IDEMPOTENT, binary=True)

    def import_memory(self, session_id: str, blob: bytes, etag: str) -> Dict[str, Any]:
        """``PUT /v1/sessions/:id/memory`` with ``If-Match: etag`` (the session's current ETag)."""
        return self._call("PUT", f"/v1/sessions/{session_id}/memory", raw=(blob, MEMORY_TYPE), headers={"if-match": etag}, mode=REFUSED)

    def delete_session(self, session_id: str) -> Dict[str, Any]:
        """``DELETE /v1/sessions/:id``."""
        return self._call("DELETE", f"/v1/sessions/{session_id}", mode=REFUSED)

    def reset(self, session_id: str, etag: Optional[str] = None) -> Dict[str, Any]:
        """``POST …/reset``: new episode (seq 0, empty memory), same configuration; ``etag``: If-Match."""
        return self._call("POST", f"/v1/sessions/{session_id}/reset", body={}, headers=_if_match(etag), mode=IDEMPOTENT if etag else REFUSED)

    def snapshot(self, session_id: str, name: Optional[str] = None) -> Dict[str, Any]:
        """``POST …/snapshots``: keeps the current state (memory, seq, policy) as ``name``."""
        return self._call("POST", f"/v1/sessions/{session_id}/snapshots", body={"name": name} if name else {}, mode=REFUSED)

    def snapshots(self, session_id: str) -> Dict[str, Any]:
        """``GET …/snapshots``: ``{"snapshots": [...], "limit": n}``."""
        return self._call("GET", f"/v1/sessions/{session_id}/snapshots", mode=IDEMPOTENT)

    def delete_snapshot(self, session_id: str, name: str) -> Dict[str, Any]:
        """``DELETE …/snapshots/:name``."""
        return self._call("DELETE", f"/v1/sessions/{session_id}/snapshots/{requests.utils.quote(name, safe='')}", mode=REFUSED)

    def rollback(self, session_id: str, snapshot: str, etag: Optional[str] = None) -> Dict[str, Any]:
        """``POST …/rollback``: back to a snapshot (its memory, seq and policy)."""
        return self._call("POST", f"/v1/sessions/{session_id}/rollback", body={"snapshot": snapshot}, headers=_if_match(etag), mode=IDEMPOTENT if etag else REFUSED)

    def fork(self, session_id: str, snapshot: Optional[str] = None) -> Dict[str, Any]:
        """``POST …/fork`` → a new session's info (same configuration and memory, or a snapshot's)."""
        return self._call("POST", f"/v1/sessions/{session_id}/fork", body={"snapshot": snapshot} if snapshot else {}, mode=REFUSED)

    def reconfigure(self, session_id: str, policy: Dict[str, Any], etag: Optional[str] = None) -> Dict[str, Any]:
        """``PATCH /v1/sessions/:id``: new policy or budget where the memory allows it (409 otherwise)."""
        body = {"policy": {"name": policy["name"], "params": policy.get("params", {})}}
        return self._call("PATCH", f"/v1/sessions/{session_id}", body=body, headers=_if_match(etag), mode=IDEMPOTENT if etag else REFUSED)

    # ── transport ────────────────────────────────────────────────────────────────────────────
    def _call(self, method: str, path: str, body: Any = None, raw=None, headers=None, mode: str = IDEMPOTENT, binary: bool = False):
        request_id = f"py-{uuid.uuid4()}"
        attempt = 0
        while True:
            try:
                return self._attempt(method, path, body, raw, headers or {}, request_id, binary)
            except (StepkvProblem, StepkvTimeout, StepkvNetworkError) as e:
                wait = retry_wait(e, mode, self.retry_delay * 2 ** attempt) if attempt < self.retries else None
                if wait is None or wait > self.max_retry_delay:
                    raise
                time.sleep(wait)
                attempt += 1

    def _attempt(self, method, path, body, raw, extra, request_id, binary):
        headers = {"authorization": f"Bearer {self.api_key}", "x-request-id": request_id, **extra}
        data = None
        if raw is not None:
            data, headers["content-type"] = raw
        elif body is not None:
            if self.format == "msgpack":
                data, headers["content-type"] = msgpack.packb(body, use_bin_type=True), MSGPACK
            else:
                data, headers["content-type"] = json.dumps(body, default=_json_default), "application/json"
        if self.format == "msgpack":
            headers["accept"] = f"{MSGPACK}, application/json;q=0.5"
        what = f"{method} {path}"
        try:
            res = self.http.request(method, self.base_url + path, data=data, headers=headers, timeout=self.timeout)
        except requests.Timeout as e:
            raise StepkvTimeout(self.timeout, what) from e
        except requests.RequestException as e:
            raise StepkvNetworkError(f"{what}: {e}") from e
        kind = res.headers.get("content-type", "").split(";")[0].strip()
        if res.status_code >= 400:
            raise problem_error(_problem(res.status_code, kind, res.content), res.headers.get("retry-after"))
        if binary:
            return res.content, res.headers.get("etag", "")
        if kind == MSGPACK:
            return msgpack.unpackb(res.content, raw=False)
        return res.json()


def _if_match(etag: Optional[str]) -> Dict[str, str]:
    return {"if-match": etag} if etag else {}


def _problem(status: int, kind: str, content: bytes) -> Dict[str, Any]:
    try:
        p = msgpack.unpackb(content, raw=False) if kind == MSGPACK else json.loads(content)
        if isinstance(p, dict) and isinstance(p.get("code"), str):
            return p
    except Exception:  # not a problem body (a proxy's error page): wrapped below
        pass
    return {"type": "about:blank", "title": f"HTTP {status}", "status": status, "code": f"http_{status}", "detail": content[:200].decode("utf-8", "replace")}


class Session:
    """One session with its step numbering: :meth:`step` sends ``seq + 1`` and advances ``seq`` on
    success, so a failed step (nothing consumed on the server) can simply be sent again. After a
    timeout or network error that outlived the retries the step may or may not have run:
    :meth:`resync` reads the server's seq before going on.

    Attributes:
        info: the last session info (dict). seq: the last successful step. etag: the state's ETag.
    """

    def __init__(self, client: Client, info: Dict[str, Any]):
        self.client = client
        self._adopt(info)

    @property
    def id(self) -> str:
        return self.info["id"]

    def step(self, observation: Dict[str, Any], options: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """Runs the next step; returns the reply (``action``, ``memory``, ``timings``, …)."""
        reply = self.client.step(self.id, self.seq + 1, observation, options)
        self.seq = reply["seq"]
        self.etag = reply["memory"]["etag"]
        return reply

    def resync(self) -> Dict[str, Any]:
        """Re-reads seq and ETag from the server."""
        return self._adopt(self.client.info(self.id))

    def reset(self) -> Dict[str, Any]:
        """New episode, same configuration."""
        return self._adopt(self.client.reset(self.id))

    def snapshot(self, name: Optional[str] = None) -> Dict[str, Any]:
        """Keeps the current state as snapshot ``name``."""
        return self.client.snapshot(self.id, name)

    def rollback(self, name: str) -> Dict[str, Any]:
        """Goes back to snapshot ``name``."""
        return self._adopt(self.client.rollback(self.id, name))

    def fork(self, snapshot: Optional[str] = None) -> "Session":
        """A new session with this one's configuration and memory (or a snapshot's)."""
        return Session(self.client, self.client.fork(self.id, snapshot))

    def reconfigure(self, policy: Dict[str, Any]) -> Dict[str, Any]:
        """Changes the policy or its budget."""
        return self._adopt(self.client.reconfigure(self.id, policy))

    def delete(self) -> Dict[str, Any]:
        """Deletes the session."""
        return self.client.delete_session(self.id)

    def _adopt(self, info: Dict[str, Any]) -> Dict[str, Any]:
        self.info = info
        self.seq = info["seq"]
        self.etag = info["etag"]
        return info
