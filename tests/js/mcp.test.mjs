// The official MCP TypeScript SDK's client over its streamable HTTP transport against
// contextd's POST /mcp, as an agent would use it. Run by tests/integration/mcp_test.cc with
// CONTEXTD_URL set to a server with auth on and the store tool enabled, WRITER_KEY and
// READER_KEY keys of one tenant, and a collection "docs" (GloVe) holding a few documents.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

async function connect(key) {
  const client = new Client({ name: "contextd-test", version: "1.0.0" });
  const transport = new StreamableHTTPClientTransport(new URL(`${process.env.CONTEXTD_URL}/mcp`), {
    requestInit: { headers: { Authorization: `Bearer ${key}` } },
  });
  await client.connect(transport);
  return { client, transport };
}

const text = (result) => result.content.map((c) => c.text).join("\n");

test("initialize negotiates a protocol and opens a session", async () => {
  const { client, transport } = await connect(process.env.WRITER_KEY);
  assert.equal(client.getServerVersion().name, "contextd");
  assert.ok(client.getServerCapabilities().tools, "tools are offered");
  assert.match(transport.sessionId, /^[0-9a-f]{64}$/);
  assert.match(client.getInstructions(), /contextd-find/);
  await client.ping();
  await client.close();
});

test("tools/list names every tool with a JSON Schema for its input", async () => {
  const { client } = await connect(process.env.WRITER_KEY);
  const { tools } = await client.listTools();
  const names = tools.map((t) => t.name).sort();
  assert.deepEqual(names, [
    "contextd-cache-lookup",
    "contextd-cache-store",
    "contextd-context",
    "contextd-find",
    "contextd-list-collections",
    "contextd-store",
  ]);
  const find = tools.find((t) => t.name === "contextd-find");
  assert.equal(find.inputSchema.type, "object");
  assert.deepEqual(find.inputSchema.required, ["collection_name", "query"]);
  assert.deepEqual(find.inputSchema.properties.mode.enum, ["vector", "keyword", "hybrid"]);
  assert.equal(find.outputSchema.properties.results.type, "array");
  await client.close();
});

test("store, then find and context see it; list names the collection", async () => {
  const { client } = await connect(process.env.WRITER_KEY);
  const stored = await client.callTool({
    name: "contextd-store",
    arguments: {
      collection_name: "docs",
      information: "Octopuses have three hearts and blue blood rich in hemocyanin.",
      metadata: { source: "mcp" },
    },
  });
  assert.equal(stored.isError, false, text(stored));
  const id = text(stored).match(/stored (mcp-[0-9a-f]{16}) in docs/)[1];

  const found = await client.callTool({
    name: "contextd-find",
    arguments: { collection_name: "docs", query: "octopus hearts blue blood", k: 3, mode: "keyword" },
  });
  assert.equal(found.isError, false, text(found));
  assert.equal(found.structuredContent.results[0].id, id);
  assert.deepEqual(found.structuredContent.results[0].metadata, { source: "mcp" });
  assert.match(text(found), /three hearts/);

  const hybrid = await client.callTool({
    name: "contextd-find",
    arguments: { collection_name: "docs", query: "which animal has three hearts", k: 2 },
  });
  assert.ok(hybrid.structuredContent.results.length > 0);

  const context = await client.callTool({
    name: "contextd-context",
    arguments: { collection_name: "docs", query: "How many hearts does an octopus have?", max_tokens: 300 },
  });
  assert.equal(context.isError, false, text(context));
  assert.match(text(context), /three hearts/);
  assert.ok(context.structuredContent.tokens <= 300);

  const listed = await client.callTool({ name: "contextd-list-collections", arguments: {} });
  assert.match(text(listed), /^docs \(\d+ documents\)/m);
  await client.close();
});

test("the LLM cache: store an answer, look it up", async () => {
  const { client } = await connect(process.env.WRITER_KEY);
  const cached = await client.callTool({
    name: "contextd-cache-store",
    arguments: { namespace: "faq", prompt: "What is the capital of France?", response: "Paris" },
  });
  assert.equal(cached.isError, false, text(cached));
  const hit = await client.callTool({
    name: "contextd-cache-lookup",
    arguments: { namespace: "faq", prompt: "What is the capital of France?" },
  });
  assert.equal(text(hit), "Paris");
  assert.equal(hit.structuredContent.hit, true);
  const miss = await client.callTool({
    name: "contextd-cache-lookup",
    arguments: { namespace: "faq", prompt: "How tall is Mount Everest?" },
  });
  assert.equal(text(miss), "miss");
  await client.close();
});

test("a bad argument is a tool error the model can read", async () => {
  const { client } = await connect(process.env.WRITER_KEY);
  const badK = await client.callTool({
    name: "contextd-find",
    arguments: { collection_name: "docs", query: "octopus", k: 0 },
  });
  assert.equal(badK.isError, true);
  assert.match(text(badK), /'k'/);
  const missing = await client.callTool({ name: "contextd-find", arguments: { collection_name: "nope", query: "x" } });
  assert.equal(missing.isError, true);
  assert.match(text(missing), /not_found/);
  const noQuery = await client.callTool({ name: "contextd-find", arguments: { collection_name: "docs" } });
  assert.equal(noQuery.isError, true);
  await assert.rejects(client.callTool({ name: "contextd-fly", arguments: {} }), /no tool named 'contextd-fly'/);
  await client.close();
});

test("a reader key may find but not store", async () => {
  const { client } = await connect(process.env.READER_KEY);
  const found = await client.callTool({
    name: "contextd-find",
    arguments: { collection_name: "docs", query: "octopus", mode: "keyword" },
  });
  assert.equal(found.isError, false, text(found));
  const refused = await client.callTool({
    name: "contextd-store",
    arguments: { collection_name: "docs", information: "should not land" },
  });
  assert.equal(refused.isError, true);
  assert.match(text(refused), /permission_denied/);
  await client.close();
});
