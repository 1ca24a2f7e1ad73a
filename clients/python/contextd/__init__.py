"""contextd: a client for the contextd context engine, standard library only (Python 3.11).

    from contextd import Client
    c = Client("http://localhost:8080", api_key="...")
    c.create_collection("docs", embedder="glove")
    c.upsert("docs", [{"id": "a", "text": "Mitochondria make ATP."}])
    hits = c.query("docs", "what makes ATP?", k=5)["results"]
    ctx = c.context("docs", "What do mitochondria do?", max_tokens=500)

Errors come back as exceptions named after the server's error (NotFound, RateLimited,
BudgetExceeded, ...), each carrying the HTTP status, the stable code and the message.
429 and 503 are retried with backoff, honouring Retry-After, up to `max_retries` times.
"""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Iterator

__all__ = [
    "Client", "ContextdError", "BadRequest", "Unauthorized", "PermissionDenied", "NotFound", "Conflict",
    "BudgetExceeded", "RateLimited", "Unavailable",
]


class ContextdError(Exception):
    """An error answer: `status` (HTTP), `code` (stable, e.g. collection_not_found), `message`."""

    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


class BadRequest(ContextdError): pass
class Unauthorized(ContextdError): pass
class PermissionDenied(ContextdError): pass
class NotFound(ContextdError): pass
class Conflict(ContextdError): pass
class BudgetExceeded(ContextdError): pass
class RateLimited(ContextdError): pass
class Unavailable(ContextdError): pass


_BY_STATUS = {400: BadRequest, 401: Unauthorized, 402: BudgetExceeded, 403: PermissionDenied, 404: NotFound,
              409: Conflict, 429: RateLimited, 503: Unavailable}


class Client:
    def __init__(self, url: str = "http://localhost:8080", api_key: str | None = None, timeout: float = 30,
                 max_retries: int = 3, max_backoff: float = 30):
        self.url = url.rstrip("/")
        self.api_key, self.timeout, self.max_retries, self.max_backoff = api_key, timeout, max_retries, max_backoff
        self.last_headers: dict[str, str] = {}  # the last reply's headers (write token, rate limits, cost)

    # -- transport ---------------------------------------------------------------------------
    def _open(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None):
        data = None if body is None else json.dumps(body).encode()
        h = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            h["Authorization"] = f"Bearer {self.api_key}"
        h.update(headers or {})
        attempt = 0
        while True:
            req = urllib.request.Request(self.url + path, data=data, method=method, headers=h)
            try:
                res = urllib.request.urlopen(req, timeout=self.timeout)
                self.last_headers = {k.lower(): v for k, v in res.headers.items()}
                return res
            except urllib.error.HTTPError as e:
                self.last_headers = {k.lower(): v for k, v in e.headers.items()}
                raw = e.read()
                try:
                    err = json.loads(raw)["error"]
                    code, message = err["code"], err["message"]
                except (ValueError, KeyError, TypeError):
                    code, message = "http_error", raw.decode(errors="replace")
                retry_after = None
                if e.headers.get("Retry-After"):
                    try:
                        retry_after = float(e.headers["Retry-After"])
                    except ValueError:
                        pass
                if e.code in (429, 503) and attempt < self.max_retries:
                    # The server's Retry-After when it gives one, else exponential backoff;
                    # jitter spreads clients that were refused together.
                    wait = retry_after if retry_after is not None else min(self.max_backoff, 0.1 * 2 ** attempt)
                    time.sleep(min(self.max_backoff, wait) * (1 + random.random() * 0.1))
                    attempt += 1
                    continue
                raise _BY_STATUS.get(e.code, ContextdError)(e.code, code, message, retry_after) from None

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        with self._open(method, path, body, headers) as res:
            raw = res.read()
        return json.loads(raw) if raw else None

    @staticmethod
    def _q(name: str) -> str:
        return urllib.parse.quote(name, safe="")

    # -- collections -------------------------------------------------------------------------
    def create_collection(self, name: str, **spec: Any) -> dict:
        return self.request("PUT", f"/v1/collections/{self._q(name)}", spec)

    def get_collection(self, name: str) -> dict:
        return self.request("GET", f"/v1/collections/{self._q(name)}")

    def list_collections(self) -> list[dict]:
        return self.request("GET", "/v1/collections")["collections"]

    def drop_collection(self, name: str) -> dict:
        return self.request("DELETE", f"/v1/collections/{self._q(name)}")

    # -- documents ---------------------------------------------------------------------------
    def upsert(self, collection: str, documents: list[dict], batch_size: int = 256) -> dict:
        """Adds or replaces documents in batches; returns the totals and the last write token."""
        total = {"upserted": 0, "chunks": 0, "write_token": None}
        for i in range(0, len(documents), batch_size):
            r = self.request("POST", f"/v1/collections/{self._q(collection)}/documents",
                             {"documents": documents[i:i + batch_size]})
            total["upserted"] += r["upserted"]
            total["chunks"] += r["chunks"]
            total["write_token"] = r.get("write_token")
        return total

    def get_document(self, collection: str, id: str) -> dict:
        return self.request("GET", f"/v1/collections/{self._q(collection)}/documents/{self._q(id)}")

    def get_documents(self, collection: str, ids: list[str]) -> dict:
        """Many documents at once: {"documents": [...], "missing": [ids not found]}."""
        return self.request("POST", f"/v1/collections/{self._q(collection)}/documents/get", {"ids": ids})

    def export(self, collection: str, *, filter: dict | None = None, page_size: int = 500) -> Iterator[dict]:
        """Every document of the collection (whose metadata matches `filter`), in id order,
        fetched a page at a time."""
        after = None
        while True:
            params = {"limit": str(page_size)}
            if filter is not None:
                params["filter"] = json.dumps(filter)
            if after is not None:
                params["after"] = after
            page = self.request("GET", f"/v1/collections/{self._q(collection)}/documents?"
                                + urllib.parse.urlencode(params))
            yield from page["documents"]
            after = page.get("next")
            if after is None:
                return

    def delete_document(self, collection: str, id: str) -> dict:
        return self.request("DELETE", f"/v1/collections/{self._q(collection)}/documents/{self._q(id)}")

    # -- search and context ------------------------------------------------------------------
    def query(self, collection: str, query: str | None = None, *, k: int = 10, mode: str | None = None,
              vector: list[float] | None = None, filter: dict | None = None, consistency: str | None = None,
              **options: Any) -> dict:
        body: dict[str, Any] = {"k": k, **options}
        for key, value in (("query", query), ("mode", mode), ("vector", vector), ("filter", filter),
                           ("consistency", consistency)):
            if value is not None:
                body[key] = value
        return self.request("POST", f"/v1/collections/{self._q(collection)}/query", body)

    def context(self, collection: str, query: str, *, max_tokens: int | None = None, session_id: str | None = None,
                **options: Any) -> dict:
        body: dict[str, Any] = {"collection": collection, "query": query, **options}
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        if session_id is not None:
            body["session_id"] = session_id
        return self.request("POST", "/v1/context", body)

    def context_stream(self, collection: str, query: str, **options: Any) -> Iterator[tuple[str, dict]]:
        """Yields (event, data) as the server streams them: "wave"s of pieces, then "done" or "error"."""
        body = {"collection": collection, "query": query, "stream": True, **options}
        res = self._open("POST", "/v1/context", body, {"Accept": "text/event-stream"})
        with res:
            event, data = "message", []
            for raw in res:
                line = raw.decode().rstrip("\r\n")
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
                elif line == "" and data:
                    yield event, json.loads("\n".join(data))
                    event, data = "message", []

    # -- sessions ----------------------------------------------------------------------------
    def append_turn(self, session_id: str, role: str, content: str, ttl_s: int | None = None) -> dict:
        body: dict[str, Any] = {"role": role, "content": content}
        if ttl_s is not None:
            body["ttl_s"] = ttl_s
        return self.request("POST", f"/v1/sessions/{self._q(session_id)}/turns", body)

    def get_session(self, session_id: str) -> dict:
        return self.request("GET", f"/v1/sessions/{self._q(session_id)}")

    def delete_session(self, session_id: str) -> dict:
        return self.request("DELETE", f"/v1/sessions/{self._q(session_id)}")

    # -- LLM cache ---------------------------------------------------------------------------
    def configure_cache(self, namespace: str, **settings: Any) -> dict:
        return self.request("PUT", f"/v1/cache/{self._q(namespace)}", settings)

    def cache_store(self, namespace: str, prompt: str, response: Any, *, scope: dict | None = None,
                    ttl_s: int | None = None) -> dict:
        body: dict[str, Any] = {"prompt": prompt, "response": response}
        if scope is not None:
            body["scope"] = scope
        if ttl_s is not None:
            body["ttl_s"] = ttl_s
        return self.request("POST", f"/v1/cache/{self._q(namespace)}/store", body)

    def cache_lookup(self, namespace: str, prompt: str, *, scope: dict | None = None,
                     threshold: float | None = None) -> dict:
        body: dict[str, Any] = {"prompt": prompt}
        if scope is not None:
            body["scope"] = scope
        if threshold is not None:
            body["threshold"] = threshold
        return self.request("POST", f"/v1/cache/{self._q(namespace)}/lookup", body)

    def cache_delete(self, namespace: str, *, scope: dict | None = None, all: bool = False) -> dict:
        params = {f"scope.{k}": v for k, v in (scope or {}).items()}
        if all:
            params["all"] = "true"
        return self.request("DELETE", f"/v1/cache/{self._q(namespace)}/entries?" + urllib.parse.urlencode(params))

    # -- embeddings --------------------------------------------------------------------------
    def embed(self, input: str | list[str], model: str = "glove", **options: Any) -> list[list[float]]:
        r = self.request("POST", "/v1/embeddings", {"model": model, "input": input, **options})
        return [d["embedding"] for d in r["data"]]
