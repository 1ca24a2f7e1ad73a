#include "engine/engine_parts.h"

#include <filesystem>
#include <utility>

#include <spdlog/spdlog.h>

#include "embed/rocks_tier.h"
#include "engine/engine.h"

namespace contextd {

StatusOr<EngineParts> OpenEngineParts(const EngineOptions& options, MetricsRegistry* metrics) {
  EngineParts parts;
  std::error_code ec;
  std::filesystem::create_directories(options.data_dir, ec);
  if (ec) return Internal("cannot create data directory " + options.data_dir + ": " + ec.message());
  CTX_ASSIGN_OR_RETURN(parts.store, Store::Open(options.data_dir + "/db", options.min_free_disk_bytes));
  std::shared_ptr<CacheTier> l2;
  if (options.embed.l2 && !options.embed.providers.empty()) {
    CTX_ASSIGN_OR_RETURN(l2, RocksTier::Open(options.data_dir + "/embed_cache", options.embed.l2_ttl_s, options.clock));
  }
  CTX_ASSIGN_OR_RETURN(
      std::unique_ptr<EmbedderRegistry> embedders,
      EmbedderRegistry::Create(options.models_dir, options.embed, std::move(l2), metrics, options.clock));
  parts.embedders = std::move(embedders);
  if (auto tok = TiktokenEncoder::Load(options.models_dir + "/tiktoken/cl100k_base.tiktoken"); tok.ok()) {
    parts.tokenizer = std::move(tok).value();
  } else {
    spdlog::warn("token counts fall back to words: {} (run scripts/setup)", tok.status().message());
  }
  // Sessions ("m" meta, "t" turns) and cache namespaces ("n" settings, "e" entries) are
  // keyed "tenant/name"; a directory from before that stored the default tenant's bare.
  for (const auto& [dir, prefixes] : {std::pair<std::string, const char*>{"/sessions", "mt"}, {"/llm_cache", "ne"}}) {
    CTX_ASSIGN_OR_RETURN(size_t renamed, AdoptUnscopedKeys(options.data_dir + dir, prefixes, kDefaultTenant));
    if (renamed > 0) spdlog::info("{}: {} keys moved under tenant '{}'", dir.substr(1), renamed, kDefaultTenant);
  }
  CTX_ASSIGN_OR_RETURN(parts.sessions,
                       SessionStore::Open(options.data_dir + "/sessions", options.clock, parts.tokenizer));
  CTX_ASSIGN_OR_RETURN(parts.llm_cache,
                       LlmCache::Open(options.data_dir + "/llm_cache", parts.embedders.get(), options.clock, metrics));
  return parts;
}

}  // namespace contextd
