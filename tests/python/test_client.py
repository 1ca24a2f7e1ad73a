"""The Python client (clients/python) against a running server with auth on. Run by
tests/integration/python_client_test.cc with CONTEXTD_URL and CONTEXTD_ADMIN_KEY set."""

import os
import uuid

import pytest

from contextd import BadRequest, Client, NotFound, PermissionDenied, RateLimited, Unauthorized

URL = os.environ["CONTEXTD_URL"]
ADMIN = Client(URL, api_key=os.environ["CONTEXTD_ADMIN_KEY"])


def new_key(tenant, **spec):
    return ADMIN.request("POST", f"/v1/admin/tenants/{tenant}/keys", spec)["key"]


@pytest.fixture(scope="module")
def tenant():
    name = "py" + uuid.uuid4().hex[:8]
    ADMIN.request("POST", "/v1/admin/tenants", {"id": name})
    return name


@pytest.fixture(scope="module")
def client(tenant):
    c = Client(URL, api_key=new_key(tenant, role="writer"))
    c.create_collection("docs", embedder="glove")
    return c


def test_documents_in_batches_then_search_and_context(client):
    docs = [{"id": f"d{i}", "text": f"Note {i} about cells."} for i in range(10)]
    docs.append({"id": "mito", "text": "Mitochondria make ATP through oxidative phosphorylation.",
                 "metadata": {"topic": "biology"}})
    total = client.upsert("docs", docs, batch_size=4)
    assert total["upserted"] == 11
    assert total["write_token"]
    assert client.get_collection("docs")["documents"] == 11
    assert client.get_document("docs", "mito")["metadata"] == {"topic": "biology"}
    hits = client.query("docs", "mitochondria ATP", k=3, mode="keyword")["results"]
    assert hits[0]["id"] == "mito"
    filtered = client.query("docs", "note mitochondria", k=20, mode="keyword", filter={"topic": "biology"})["results"]
    assert [h["id"] for h in filtered] == ["mito"]
    ctx = client.context("docs", "What do mitochondria make?", max_tokens=200)
    assert ctx["tokens"] <= 200
    assert any(p["id"] == "mito" for p in ctx["pieces"])
    events = list(client.context_stream("docs", "What do mitochondria make?", max_tokens=200))
    assert events[0][0] == "wave"
    assert events[-1][0] == "done"
    assert any(p["id"] == "mito" for e, d in events if e == "wave" for p in d["pieces"])
    exported = list(client.export("docs", page_size=3))
    assert [d["id"] for d in exported] == sorted(d["id"] for d in docs)
    assert [d["id"] for d in client.export("docs", filter={"topic": "biology"}, page_size=2)] == ["mito"]
    many = client.get_documents("docs", ["mito", "absent", "d3"])
    assert [d["id"] for d in many["documents"]] == ["mito", "d3"]
    assert many["missing"] == ["absent"]
    client.delete_document("docs", "d0")
    with pytest.raises(NotFound) as e:
        client.get_document("docs", "d0")
    assert e.value.status == 404
    assert e.value.code == "not_found"


def test_sessions_cache_and_embeddings(client):
    client.append_turn("chat-1", "user", "Hello there")
    client.append_turn("chat-1", "assistant", "Hi!")
    assert [t["role"] for t in client.get_session("chat-1")["turns"]] == ["user", "assistant"]
    client.delete_session("chat-1")
    with pytest.raises(NotFound):
        client.get_session("chat-1")
    client.configure_cache("faq")
    stored = client.cache_store("faq", "What is the capital of France?", "Paris", scope={"user": "u1"})
    hit = client.cache_lookup("faq", "What is the capital of France?", scope={"user": "u1"})
    assert hit["hit"] and hit["id"] == stored["id"] and hit["response"] == "Paris"
    assert not client.cache_lookup("faq", "What is the capital of France?", scope={"user": "u2"})["hit"]
    assert client.cache_delete("faq", scope={"user": "u1"})["deleted"] == 1
    vectors = client.embed(["hello world", "green tea"])
    assert len(vectors) == 2 and len(vectors[0]) == 100


def test_errors_are_typed(client, tenant):
    with pytest.raises(BadRequest) as e:
        client.query("docs", "x", k=0)
    assert "'k'" in e.value.message
    with pytest.raises(NotFound) as e:
        client.query("nope", "x")
    assert e.value.code == "collection_not_found"
    with pytest.raises(Unauthorized):
        Client(URL, api_key="ctxd_0000000000000000_" + "0" * 64).list_collections()
    reader = Client(URL, api_key=new_key(tenant, role="reader"))
    assert [c["name"] for c in reader.list_collections()] == ["docs"]
    with pytest.raises(PermissionDenied) as e:
        reader.upsert("docs", [{"id": "x", "text": "no"}])
    assert e.value.code == "permission_denied"


def test_rate_limits_are_retried_after_the_servers_wait(tenant):
    # 60 a minute: the bucket starts full, so spend it, then the next waits about a second.
    key = new_key(tenant, role="reader", limits={"rpm": 60})
    impatient = Client(URL, api_key=key, max_retries=0)
    with pytest.raises(RateLimited) as e:
        for _ in range(61):
            impatient.list_collections()
    assert e.value.status == 429 and e.value.retry_after >= 1
    patient = Client(URL, api_key=key, max_retries=3)
    assert [c["name"] for c in patient.list_collections()] == ["docs"]
    assert patient.last_headers["x-ratelimit-limit-requests"] == "60"
