// QueryExecutor: one search over a read snapshot of a collection's parts: the vector,
// keyword or hybrid candidates (ShardSet, DocumentTable's keyword and payload indexes),
// their fusion, grouping by document and diversity (MMR), the hits with their texts and
// metadata, and the documents they cite pulled in ("expand_refs"). It neither embeds nor
// caches: Collection embeds the query before and the query cache stores the result after.
//
// Thread safety: a value over const references. Run() reads the parts, so the caller
// holds the collection's lock (shared is enough) from construction to the last Run().
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/request_context.h"
#include "common/status.h"
#include "engine/collection_types.h"
#include "engine/document_table.h"
#include "engine/requests.h"
#include "engine/shard_set.h"
#include "text/analyzer.h"

namespace contextd {

class QueryExecutor {
 public:
  QueryExecutor(const DocumentTable& table, const ShardSet& shards, const Analyzer& analyzer,
                const CollectionConfig& config)
      : table_(table), shards_(shards), analyzer_(analyzer), config_(config) {}

  // What a search needs besides the request: the mode it runs in (a hybrid query whose
  // embedding failed runs as keyword), the query vector (empty for keyword) and the
  // query's keyword terms with their weights (QueryTerms()).
  struct Input {
    QueryMode mode = QueryMode::kHybrid;
    const std::vector<float>* vector = nullptr;
    const std::vector<std::string>* terms = nullptr;
    const std::vector<float>* term_weights = nullptr;
  };
  // Besides the hits, what the query cache needs to know when a write makes the result
  // stale: every id the results cite (present or not), and the score a new chunk must
  // reach to enter the vector candidates (none when the list was short, since then any
  // chunk could enter).
  struct Extras {
    std::vector<std::string> cited;
    std::optional<float> vector_bar;
  };
  // Fills result->hits and result->route; charges ctx with the chunks scored; checks the
  // deadline between steps.
  Status Run(const RequestContext& ctx, const QueryRequest& req, const Input& in, QueryResult* result,
             Extras* extras) const;

 private:
  // Appends to *hits the best chunk of each document the hits cite and do not already
  // contain; *cited receives every id cited.
  void ExpandRefs(const std::vector<float>& query, const std::vector<std::string>& terms, std::vector<QueryHit>* hits,
                  std::vector<std::string>* cited) const;

  const DocumentTable& table_;
  const ShardSet& shards_;
  const Analyzer& analyzer_;
  const CollectionConfig& config_;
};

}  // namespace contextd
