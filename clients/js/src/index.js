// contextd's JavaScript client: ESM, the built-in fetch, no runtime dependency.
//
//   import { Client } from "contextd";
//   const c = new Client({ url: "http://localhost:8080", apiKey: "..." });
//   await c.createCollection("docs", { embedder: "glove" });
//   await c.upsert("docs", [{ id: "a", text: "Mitochondria make ATP." }]);
//   const { results } = await c.query("docs", "what makes ATP?", { k: 5 });
//
// Errors are ContextdError (status, code, message, retryAfter); 429 and 503 are retried
// after the server's Retry-After (or an exponential backoff) up to maxRetries times.

export class ContextdError extends Error {
  constructor(status, code, message, retryAfter) {
    super(`${status} ${code}: ${message}`);
    this.name = "ContextdError";
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const seg = (s) => encodeURIComponent(s);

export class Client {
  constructor({ url = "http://localhost:8080", apiKey, maxRetries = 3, maxBackoffMs = 30000, fetch: f } = {}) {
    this.url = url.replace(/\/+$/, "");
    this.apiKey = apiKey;
    this.maxRetries = maxRetries;
    this.maxBackoffMs = maxBackoffMs;
    this.fetch = f ?? globalThis.fetch;
    this.lastHeaders = new Headers();
  }

  async #send(method, path, body, headers = {}) {
    const h = { "content-type": "application/json", accept: "application/json", ...headers };
    if (this.apiKey) h.authorization = `Bearer ${this.apiKey}`;
    for (let attempt = 0; ; attempt++) {
      const res = await this.fetch(this.url + path, {
        method,
        headers: h,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      this.lastHeaders = res.headers;
      if (res.ok) return res;
      const text = await res.text();
      let code = "http_error";
      let message = text;
      try {
        ({ code, message } = JSON.parse(text).error);
      } catch {}
      const retryAfter = res.headers.get("retry-after") ? Number(res.headers.get("retry-after")) : undefined;
      if ((res.status === 429 || res.status === 503) && attempt < this.maxRetries) {
        const wait = retryAfter !== undefined ? retryAfter * 1000 : Math.min(this.maxBackoffMs, 100 * 2 ** attempt);
        await sleep(Math.min(this.maxBackoffMs, wait) * (1 + Math.random() * 0.1));
        continue;
      }
      throw new ContextdError(res.status, code, message, retryAfter);
    }
  }

  async request(method, path, body, headers) {
    const res = await this.#send(method, path, body, headers);
    const text = await res.text();
    return text ? JSON.parse(text) : null;
  }

  // Collections.
  createCollection(name, spec = {}) {
    return this.request("PUT", `/v1/collections/${seg(name)}`, spec);
  }
  getCollection(name) {
    return this.request("GET", `/v1/collections/${seg(name)}`);
  }
  async listCollections() {
    return (await this.request("GET", "/v1/collections")).collections;
  }
  dropCollection(name) {
    return this.request("DELETE", `/v1/collections/${seg(name)}`);
  }

  // Documents: upserts go in batches; the last write token comes back.
  async upsert(collection, documents, { batchSize = 256 } = {}) {
    const total = { upserted: 0, chunks: 0, write_token: undefined };
    for (let i = 0; i < documents.length; i += batchSize) {
      const r = await this.request("POST", `/v1/collections/${seg(collection)}/documents`, {
        documents: documents.slice(i, i + batchSize),
      });
      total.upserted += r.upserted;
      total.chunks += r.chunks;
      total.write_token = r.write_token;
    }
    return total;
  }
  getDocument(collection, id) {
    return this.request("GET", `/v1/collections/${seg(collection)}/documents/${seg(id)}`);
  }
  // Many documents at once: {documents, missing}.
  getDocuments(collection, ids) {
    return this.request("POST", `/v1/collections/${seg(collection)}/documents/get`, { ids });
  }
  // Every document (whose metadata matches `filter`), in id order, a page at a time.
  async *export(collection, { filter, pageSize = 500 } = {}) {
    let after = null;
    for (;;) {
      const params = new URLSearchParams({ limit: String(pageSize) });
      if (filter !== undefined) params.set("filter", JSON.stringify(filter));
      if (after !== null) params.set("after", after);
      const page = await this.request("GET", `/v1/collections/${seg(collection)}/documents?${params}`);
      yield* page.documents;
      if (page.next === null || page.next === undefined) return;
      after = page.next;
    }
  }
  deleteDocument(collection, id) {
    return this.request("DELETE", `/v1/collections/${seg(collection)}/documents/${seg(id)}`);
  }

  // Search and context.
  query(collection, query, options = {}) {
    const body = { ...options };
    if (query !== undefined && query !== null) body.query = query;
    return this.request("POST", `/v1/collections/${seg(collection)}/query`, body);
  }
  context(collection, query, options = {}) {
    return this.request("POST", "/v1/context", { collection, query, ...options });
  }
  // Yields {event, data}: "wave"s of cited pieces, then "done" (or "error").
  async *contextStream(collection, query, options = {}) {
    const res = await this.#send(
      "POST",
      "/v1/context",
      { collection, query, ...options, stream: true },
      { accept: "text/event-stream" },
    );
    const decoder = new TextDecoder();
    let buffer = "";
    for await (const chunk of res.body) {
      buffer += decoder.decode(chunk, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).trim());
        }
        if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
      }
    }
  }

  // Sessions.
  appendTurn(sessionId, role, content, options = {}) {
    return this.request("POST", `/v1/sessions/${seg(sessionId)}/turns`, { role, content, ...options });
  }
  getSession(sessionId) {
    return this.request("GET", `/v1/sessions/${seg(sessionId)}`);
  }
  deleteSession(sessionId) {
    return this.request("DELETE", `/v1/sessions/${seg(sessionId)}`);
  }

  // LLM cache.
  configureCache(namespace, settings = {}) {
    return this.request("PUT", `/v1/cache/${seg(namespace)}`, settings);
  }
  cacheStore(namespace, prompt, response, options = {}) {
    return this.request("POST", `/v1/cache/${seg(namespace)}/store`, { prompt, response, ...options });
  }
  cacheLookup(namespace, prompt, options = {}) {
    return this.request("POST", `/v1/cache/${seg(namespace)}/lookup`, { prompt, ...options });
  }
  cacheDelete(namespace, { scope = {}, all = false } = {}) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(scope)) params.set(`scope.${k}`, v);
    if (all) params.set("all", "true");
    return this.request("DELETE", `/v1/cache/${seg(namespace)}/entries?${params}`);
  }

  // Embeddings (OpenAI's shape).
  async embed(input, { model = "glove", ...options } = {}) {
    const r = await this.request("POST", "/v1/embeddings", { model, input, ...options });
    return r.data.map((d) => d.embedding);
  }
}
