// The official OpenAI SDK and LangChain.js's OpenAIEmbeddings against contextd's
// /v1/embeddings and /v1/models, exactly as users call them. Run by
// tests/integration/js_clients_test.cc with CONTEXTD_URL set to a server that has GloVe and
// a Matryoshka provider "provider:fake" (16 dims).
import assert from "node:assert/strict";
import { test } from "node:test";

import { OpenAIEmbeddings } from "@langchain/openai";
import { getEncoding } from "js-tiktoken";
import OpenAI from "openai";

const baseURL = `${process.env.CONTEXTD_URL}/v1`;
const client = new OpenAI({ baseURL, apiKey: "unused", maxRetries: 0 });

function norm(v) {
  return Math.sqrt(v.reduce((s, x) => s + x * x, 0));
}

function assertClose(a, b, eps = 1e-6) {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= eps, `[${i}] ${a[i]} vs ${b[i]}`);
}

async function floats(input, model = "glove") {
  const r = await client.embeddings.create({ model, input, encoding_format: "float" });
  return r.data.map((d) => d.embedding);
}

test("the SDK's default call (it asks for base64) gets the float vectors", async () => {
  const r = await client.embeddings.create({ model: "glove", input: ["hello world", "green tea"] });
  assert.equal(r.object, "list");
  assert.equal(r.data.length, 2);
  assert.equal(r.model, "glove-6b-100d");
  const want = await floats(["hello world", "green tea"]);
  for (let i = 0; i < 2; i++) {
    assert.equal(r.data[i].index, i);
    assert.ok(Array.isArray(r.data[i].embedding), "decoded by the SDK into numbers");
    assert.equal(r.data[i].embedding.length, 100);
    // base64 carries the exact float32 values; the float form prints the shortest decimal
    // that reads back as the same float32.
    assertClose(r.data[i].embedding, want[i], 1e-7);
    assert.ok(Math.abs(norm(r.data[i].embedding) - 1) < 1e-5);
  }
  assert.equal(r.usage.prompt_tokens, 4);
  assert.equal(r.usage.total_tokens, 4);
});

test("base64 asked for explicitly stays a string of little-endian float32", async () => {
  const r = await client.embeddings.create({ model: "glove", input: "hello world", encoding_format: "base64" });
  assert.equal(typeof r.data[0].embedding, "string");
  const bytes = Buffer.from(r.data[0].embedding, "base64");
  assert.equal(bytes.length, 400);
  const v = Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, 100));
  assertClose(v, (await floats("hello world"))[0], 1e-7);
});

test("dimensions shortens a Matryoshka model's vectors and renormalises them", async () => {
  const [full] = await floats("hello world", "provider:fake");
  assert.equal(full.length, 16);
  const r = await client.embeddings.create({ model: "provider:fake", input: "hello world", dimensions: 8 });
  const short = r.data[0].embedding;
  assert.equal(short.length, 8);
  assert.ok(Math.abs(norm(short) - 1) < 1e-5);
  const n = norm(full.slice(0, 8));
  assertClose(short, full.slice(0, 8).map((x) => x / n), 1e-6);
  // The model's own size is always accepted.
  const same = await client.embeddings.create({ model: "glove", input: "hello world", dimensions: 100 });
  assert.equal(same.data[0].embedding.length, 100);
});

test("dimensions a model cannot give is a 400 that says what it supports", async () => {
  await assert.rejects(client.embeddings.create({ model: "glove", input: "hello", dimensions: 50 }), (e) => {
    assert.equal(e.status, 400);
    assert.match(e.message, /must be 100 only/);
    assert.equal(e.code, "unsupported_dimensions");
    return true;
  });
  await assert.rejects(client.embeddings.create({ model: "provider:fake", input: "hello", dimensions: 17 }), (e) => {
    assert.equal(e.status, 400);
    assert.match(e.message, /from 1 to 16/);
    return true;
  });
});

test("token-id inputs are decoded as cl100k_base and embed like their text", async () => {
  const enc = getEncoding("cl100k_base");
  const texts = ["hello world", "Green tea is made from leaves."];
  const ids = texts.map((t) => enc.encode(t));
  const want = await floats(texts);
  const lists = await client.embeddings.create({ model: "glove", input: ids, encoding_format: "float" });
  assertClose(lists.data[0].embedding, want[0]);
  assertClose(lists.data[1].embedding, want[1]);
  assert.equal(lists.usage.prompt_tokens, ids[0].length + ids[1].length);
  const one = await client.embeddings.create({ model: "glove", input: ids[1], encoding_format: "float" });
  assert.equal(one.data.length, 1);
  assertClose(one.data[0].embedding, want[1]);
});

test("user is accepted", async () => {
  const r = await client.embeddings.create({ model: "glove", input: "hello", user: "u42" });
  assert.equal(r.data.length, 1);
});

test("models.list and models.retrieve show the embedders", async () => {
  const ids = [];
  for await (const m of client.models.list()) {
    assert.equal(m.object, "model");
    assert.equal(m.owned_by, "contextd");
    assert.equal(typeof m.created, "number");
    ids.push(m.id);
  }
  assert.ok(ids.includes("glove"), ids.join(","));
  assert.ok(ids.includes("provider:fake"), ids.join(","));
  const glove = await client.models.retrieve("glove");
  assert.equal(glove.id, "glove");
  assert.equal(glove.dimensions, 100);
  await assert.rejects(client.models.retrieve("no-such-model"), (e) => {
    assert.equal(e.status, 404);
    return true;
  });
});

test("LangChain's OpenAIEmbeddings embeds queries and documents", async () => {
  const embeddings = new OpenAIEmbeddings({ model: "glove", apiKey: "unused", configuration: { baseURL } });
  const q = await embeddings.embedQuery("hello world");
  assertClose(q, (await floats("hello world"))[0], 1e-7);
  const docs = await embeddings.embedDocuments(["green tea", "black coffee", "hello world"]);
  assert.equal(docs.length, 3);
  assertClose(docs[2], q, 1e-7);
  const short = new OpenAIEmbeddings({ model: "provider:fake", dimensions: 4, apiKey: "unused", configuration: { baseURL } });
  const v = await short.embedQuery("hello world");
  assert.equal(v.length, 4);
  assert.ok(Math.abs(norm(v) - 1) < 1e-5);
});
