// EngineParts: what an Engine is built from. The composition root (`contextd serve`, or a
// tool or test) makes them, with OpenEngineParts() for the standard set over a data
// directory or one by one with fakes, keeps what the server needs besides the engine (the
// embedder catalog for /v1/embeddings and /v1/models, the tokenizer), and hands the rest
// to Engine::Open. The Engine owns what it is given and hands none of it back out.
//
// Thread safety: a plain struct; each part documents its own.
#pragma once

#include <memory>

#include "cache/llm_cache.h"
#include "common/metrics.h"
#include "common/status.h"
#include "embed/embedder_registry.h"
#include "engine/sessions.h"
#include "store/store.h"
#include "text/tiktoken.h"

namespace contextd {

struct EngineOptions;

struct EngineParts {
  std::unique_ptr<Store> store;
  // Shared: the server reads the catalog too.
  std::shared_ptr<EmbedderRegistry> embedders;
  // cl100k_base, for counting tokens as OpenAI's models do; null when the file is missing
  // (counts fall back to words).
  std::shared_ptr<const TiktokenEncoder> tokenizer;
  std::unique_ptr<SessionStore> sessions;
  std::unique_ptr<LlmCache> llm_cache;  // uses `embedders`
};

// The standard parts over options.data_dir and options.models_dir: the RocksDB store, the
// embedder registry (providers, batching, the L1 cache and the L2 tier in
// data_dir/embed_cache), cl100k_base, the session store and the LLM cache, each in its
// own directory. A directory from a release that stored sessions and cache namespaces
// without a tenant is migrated here, once (AdoptUnscopedKeys).
StatusOr<EngineParts> OpenEngineParts(const EngineOptions& options, MetricsRegistry* metrics);

}  // namespace contextd
