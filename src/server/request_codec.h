// The JSON request bodies of the collection routes, read into the engine's typed requests
// (engine/requests.h, engine/context.h). All validation of user input happens here,
// before anything is changed, so one bad document rejects its whole batch and a rejected
// request has no effect. Every reader uses FieldReader, so a mistake gets one reason
// everywhere.
//
// Thread safety: free functions.
#pragma once

#include <string>
#include <vector>

#include "cache/llm_cache.h"
#include "common/json.h"
#include "common/status.h"
#include "engine/context.h"
#include "engine/engine.h"
#include "engine/requests.h"

namespace contextd {

class EmbedderCatalog;

// PUT /v1/collections/{name} body (null: every default). Resolves the embedder to learn
// its model and dim.
StatusOr<CollectionConfig> ParseCollectionRequest(const Json& body, const EmbedderCatalog& embedders);

// POST .../documents body. `dim` is the collection's vector size; `needs_vector` is set for
// collections without an embedder.
StatusOr<std::vector<DocumentInput>> ParseUpsertRequest(const Json& body, int dim, bool needs_vector);

// POST .../query body. The default mode is vector for a vector query, hybrid for text in a
// collection with an embedder, keyword otherwise.
StatusOr<QueryRequest> ParseQueryRequest(const Json& body, int dim, bool has_embedder);

// POST /v1/context body: {"collection", "query", "max_tokens", "max_ms", "mode",
// "candidates", "strategy", "expand_refs", "session_id", "stream"}; has_embedder picks the
// default mode (hybrid, else keyword). "collection" and "stream" are the route's own.
StatusOr<ContextRequest> ParseContextRequest(const Json& body, bool has_embedder);

// PUT /v1/cache/{ns} body (null: change nothing): {"embedder", "threshold", "ttl_s"}.
StatusOr<CacheSettingsUpdate> ParseCacheSettings(const Json& body);
// POST /v1/cache/{ns}/store body: {"prompt", "response", "scope"?, "ttl_s"?}.
StatusOr<CacheStoreRequest> ParseCacheStore(const Json& body);
// POST /v1/cache/{ns}/lookup body: {"prompt", "scope"?, "threshold"?}.
StatusOr<CacheLookupRequest> ParseCacheLookup(const Json& body);
// POST /v1/cache/{ns}/feedback: {"id","prompt"} and either "correct" or "response".
StatusOr<CacheFeedbackRequest> ParseCacheFeedback(const Json& body);

// A JSON array of numbers as a vector of exactly `dim` finite floats.
StatusOr<std::vector<float>> ParseVector(const Json& v, int dim, const std::string& where);

// `v` with every object's members sorted by name, as text: equal filters, equal keys.
std::string CanonicalJson(const Json& v);

// Reads `spec` as PUT /v1/collections/{name} does (its embedder resolved in `embedders`,
// which must name the same models as the engine's) and creates the collection: for tools,
// benchmarks and tests that hold an Engine rather than a server.
StatusOr<std::shared_ptr<Collection>> CreateFromSpec(Engine& engine, const EmbedderCatalog& embedders,
                                                     const std::string& tenant, const std::string& name,
                                                     const Json& spec);

}  // namespace contextd
