// LangChain.js over contextd: a VectorStore (contextd chunks and embeds server-side with the
// collection's embedder, so no client-side Embeddings is needed for text) and a retriever
// over /v1/context (cited pieces within a token budget).
//
//   import { ContextdVectorStore, ContextdRetriever } from "contextd/langchain";
//   const store = await ContextdVectorStore.fromTexts(texts, metadatas, undefined,
//     { url: "http://localhost:8080", collection: "docs" });
//   const docs = await store.similaritySearch("what makes ATP?", 4);
import { Document } from "@langchain/core/documents";
import { BaseRetriever } from "@langchain/core/retrievers";
import { VectorStore } from "@langchain/core/vectorstores";

import { Client } from "./index.js";

function clientOf({ client, url, apiKey }) {
  return client ?? new Client({ url, apiKey });
}

function toDocument(hit) {
  return new Document({
    pageContent: hit.text,
    metadata: { ...(hit.metadata ?? {}), id: hit.id, chunk: hit.chunk },
    id: hit.id,
  });
}

export class ContextdVectorStore extends VectorStore {
  // config: {client | url + apiKey, collection, mode?: "hybrid" | "vector" | "keyword"}.
  constructor(embeddings, config) {
    super(embeddings, config);
    this.client = clientOf(config);
    this.collection = config.collection;
    this.mode = config.mode;
  }

  _vectorstoreType() {
    return "contextd";
  }

  // Ids: options.ids, a document's own id, or a fresh one.
  async addDocuments(documents, options = {}) {
    const ids = documents.map((d, i) => options.ids?.[i] ?? d.id ?? globalThis.crypto.randomUUID());
    await this.client.upsert(
      this.collection,
      documents.map((d, i) => ({ id: ids[i], text: d.pageContent, metadata: d.metadata ?? {} })),
    );
    return ids;
  }

  async addVectors(vectors, documents, options = {}) {
    const ids = documents.map((d, i) => options.ids?.[i] ?? d.id ?? globalThis.crypto.randomUUID());
    await this.client.upsert(
      this.collection,
      documents.map((d, i) => ({ id: ids[i], text: d.pageContent, metadata: d.metadata ?? {}, vector: vectors[i] })),
    );
    return ids;
  }

  async #search(body, k, filter) {
    const r = await this.client.query(this.collection, body.query, {
      k,
      ...(this.mode && body.vector === undefined ? { mode: this.mode } : {}),
      ...(filter ? { filter } : {}),
      ...body,
    });
    return r.results.map((hit) => [toDocument(hit), hit.score]);
  }

  similaritySearchVectorWithScore(query, k, filter) {
    return this.#search({ vector: query, mode: "vector" }, k, filter);
  }

  // Text queries go to the server as text: it embeds (hybrid by default) with the
  // collection's own embedder.
  similaritySearchWithScore(query, k = 4, filter) {
    return this.#search({ query }, k, filter);
  }

  async similaritySearch(query, k = 4, filter) {
    return (await this.similaritySearchWithScore(query, k, filter)).map(([doc]) => doc);
  }

  async maxMarginalRelevanceSearch(query, options = {}) {
    const { k = 4, fetchK = 20, lambda = 0.5, filter } = options;
    const pairs = await this.#search({ query, depth: fetchK, mmr: { lambda } }, k, filter);
    return pairs.map(([doc]) => doc);
  }

  async delete({ ids } = {}) {
    for (const id of ids ?? []) await this.client.deleteDocument(this.collection, id);
  }

  static async fromTexts(texts, metadatas, embeddings, config) {
    const docs = texts.map(
      (text, i) => new Document({ pageContent: text, metadata: Array.isArray(metadatas) ? metadatas[i] : metadatas }),
    );
    return ContextdVectorStore.fromDocuments(docs, embeddings, config);
  }

  static async fromDocuments(docs, embeddings, config) {
    const store = new ContextdVectorStore(embeddings, config);
    await store.addDocuments(docs);
    return store;
  }
}

// Cited context for the query, each piece a Document (id, chunks, score, wave, tokens in
// its metadata), within max_tokens.
export class ContextdRetriever extends BaseRetriever {
  lc_namespace = ["contextd", "retrievers"];

  constructor(fields) {
    super(fields);
    this.client = clientOf(fields);
    this.collection = fields.collection;
    this.maxTokens = fields.maxTokens ?? 1000;
    this.sessionId = fields.sessionId;
  }

  async _getRelevantDocuments(query) {
    const r = await this.client.context(this.collection, query, {
      max_tokens: this.maxTokens,
      ...(this.sessionId ? { session_id: this.sessionId } : {}),
    });
    return r.pieces.map(
      (p) =>
        new Document({
          pageContent: p.text,
          metadata: { id: p.id, chunks: p.chunks, score: p.score, wave: p.wave, tokens: p.tokens },
        }),
    );
  }
}
