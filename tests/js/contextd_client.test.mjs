// contextd's own JavaScript client (clients/js) and its LangChain.js VectorStore and
// retriever, against a running server (CONTEXTD_URL), with the real @langchain/core.
// Run by tests/integration/openai_compat_test.cc (node --preserve-symlinks: the client is
// linked in as a file: dependency and resolves @langchain/core from here).
import assert from "node:assert/strict";
import { test } from "node:test";

import { Client, ContextdError } from "contextd";
import { ContextdRetriever, ContextdVectorStore } from "contextd/langchain";

const url = process.env.CONTEXTD_URL;
const client = new Client({ url });
const name = (prefix) => `${prefix}-${Math.random().toString(16).slice(2, 10)}`;

const FACTS = [
  "Mitochondria make ATP through oxidative phosphorylation.",
  "Ribosomes translate messenger RNA into proteins.",
  "Chloroplasts capture light energy for photosynthesis.",
  "The nucleus holds the cell's chromosomes.",
];

test("the client's surface: collections, documents, search, context, sessions, cache, embeddings", async () => {
  const docs = name("docs");
  await client.createCollection(docs, { embedder: "glove" });
  const total = await client.upsert(
    docs,
    FACTS.map((text, i) => ({ id: `f${i}`, text, metadata: { n: i } })),
    { batchSize: 3 },
  );
  assert.equal(total.upserted, 4);
  assert.ok(total.write_token);
  assert.equal((await client.getCollection(docs)).documents, 4);
  assert.deepEqual((await client.getDocument(docs, "f0")).metadata, { n: 0 });
  const exported = [];
  for await (const d of client.export(docs, { pageSize: 3 })) exported.push(d.id);
  assert.deepEqual(exported, ["f0", "f1", "f2", "f3"]);
  const odd = [];
  for await (const d of client.export(docs, { filter: { n: { $in: [1, 3] } }, pageSize: 1 })) odd.push(d.id);
  assert.deepEqual(odd, ["f1", "f3"]);
  const many = await client.getDocuments(docs, ["f2", "zz"]);
  assert.deepEqual(many.documents.map((d) => d.id), ["f2"]);
  assert.deepEqual(many.missing, ["zz"]);
  const { results } = await client.query(docs, "mitochondria ATP", { k: 2, mode: "keyword" });
  assert.equal(results[0].id, "f0");
  const ctx = await client.context(docs, "What do ribosomes do?", { max_tokens: 100 });
  assert.ok(ctx.pieces.some((p) => p.id === "f1"));
  const events = [];
  for await (const e of client.contextStream(docs, "What do ribosomes do?", { max_tokens: 100 })) events.push(e);
  assert.equal(events[0].event, "wave");
  assert.equal(events.at(-1).event, "done");
  await client.appendTurn("js-chat", "user", "hello");
  assert.equal((await client.getSession("js-chat")).turns.length, 1);
  await client.deleteSession("js-chat");
  const ns = name("faq");
  await client.configureCache(ns);
  await client.cacheStore(ns, "What is the capital of France?", "Paris");
  assert.equal((await client.cacheLookup(ns, "What is the capital of France?")).response, "Paris");
  assert.equal((await client.cacheDelete(ns, { all: true })).deleted, 1);
  const [v] = await client.embed("hello world");
  assert.equal(v.length, 100);
  await client.deleteDocument(docs, "f3");
  await assert.rejects(client.getDocument(docs, "f3"), (e) => e instanceof ContextdError && e.status === 404);
  await assert.rejects(client.query(docs, "x", { k: 0 }), (e) => e.status === 400 && /'k'/.test(e.message));
  await assert.rejects(client.listCollections().then(() => client.query("nope", "x")), (e) => e.code === "collection_not_found");
  await client.dropCollection(docs);
});

test("LangChain VectorStore: fromTexts, similarity search with scores, MMR, delete, as a retriever", async () => {
  const collection = name("lc");
  await client.createCollection(collection, { embedder: "glove" });
  const store = await ContextdVectorStore.fromTexts(
    FACTS,
    FACTS.map((_, i) => ({ n: i })),
    undefined,
    { url, collection },
  );
  const found = await store.similaritySearch("mitochondria ATP energy", 2);
  assert.equal(found.length, 2);
  assert.match(found[0].pageContent, /Mitochondria/);
  assert.equal(found[0].metadata.n, 0);
  const scored = await store.similaritySearchWithScore("photosynthesis light", 1);
  assert.match(scored[0][0].pageContent, /Chloroplasts/);
  assert.equal(typeof scored[0][1], "number");
  const filtered = await store.similaritySearch("cell", 4, { n: 3 });
  assert.deepEqual(filtered.map((d) => d.metadata.n), [3]);
  const mmr = await store.maxMarginalRelevanceSearch("cell energy", { k: 2, fetchK: 4 });
  assert.equal(mmr.length, 2);
  const retriever = store.asRetriever(1);
  const got = await retriever.invoke("translate messenger RNA");
  assert.match(got[0].pageContent, /Ribosomes/);
  const ids = await store.addDocuments([{ pageContent: "Lysosomes digest waste.", metadata: { n: 9 } }]);
  assert.match((await store.similaritySearch("lysosomes digest", 1))[0].pageContent, /Lysosomes/);
  await store.delete({ ids });
  const after = await store.similaritySearch("lysosomes digest", 4);
  assert.ok(after.every((d) => !/Lysosomes/.test(d.pageContent)));
});

test("LangChain retriever over /v1/context: cited pieces within the budget", async () => {
  const collection = name("ctx");
  await client.createCollection(collection, { embedder: "glove" });
  await client.upsert(collection, FACTS.map((text, i) => ({ id: `f${i}`, text })));
  const retriever = new ContextdRetriever({ url, collection, maxTokens: 50 });
  const docs = await retriever.invoke("Which organelle makes ATP?");
  assert.ok(docs.length > 0);
  assert.ok(docs.some((d) => d.metadata.id === "f0"));
  assert.ok(docs.reduce((n, d) => n + d.metadata.tokens, 0) <= 50);
});
