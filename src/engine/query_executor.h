// QueryExecutor: one search over a read snapshot of a collection's parts: the vector,
// keyword or hybrid candidates (ShardSet, DocumentTable's keyword and payload indexes),
// their fusion, grouping by document and diversity (MMR), the hits with their texts and
// metadata, and the documents they cite pulled in ("expand_refs"). It neither embeds nor
// caches: Collection embeds the query before and the query cache stores the result after.
//
// Thread safety: a value over const references. Run() reads the parts, so the caller
// holds the collection's lock (shared is enough) from construction to the last Run().
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/request_context.h"
#include "common/status.h"
#include "engine/collection_types.h"
#include "engine/document_table.h"
#include "engine/keyword_evidence.h"
#include "engine/requests.h"
#include "engine/shard_candidates.h"
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
    // Collect what the query cache needs to keep a keyword or hybrid answer across writes
    // (Extras::keyword_evidence).
    bool evidence = false;
  };
  // Besides the hits, what the query cache needs to know when a write makes the result
  // stale: every id the results cite (present or not), and the score a new chunk must
  // reach to enter the vector candidates (none when the list was short, since then any
  // chunk could enter).
  struct Extras {
    std::vector<std::string> cited;
    std::optional<float> vector_bar;
    // When Input::evidence asked for it (and the answer allows it): what a keyword or
    // hybrid answer rests on.
    std::optional<KeywordEvidence> keyword_evidence;
  };
  // Fills result->hits and result->route; charges ctx with the chunks scored; checks the
  // deadline between steps.
  Status Run(const RequestContext& ctx, const QueryRequest& req, const Input& in, QueryResult* result,
             Extras* extras) const;

  // A query spread over shards that live on several nodes, in two halves:
  //   Gather   (on a node holding the shards named): the vector candidates of
  //            `vector_shards` (those the query's routing picked) and the keyword
  //            candidates of `keyword_shards` (every shard: keywords do not follow the
  //            centroids), each list as deep as the whole query needs it, scored as over
  //            the whole collection;
  //   Assemble (on the node answering): the parts of every probed shard merged by score,
  //            then fused, grouped and diversified as Run does; charges ctx with the
  //            chunks the parts scored. The hits have no text or metadata yet: the
  //            caller fetches those of the final hits (Collection::Assemble).
  // Assembled from the parts of the shards Run would search (its routed shards for vectors,
  // every shard for keywords), the hits equal Run's.
  // NotFound from Gather names a shard not held here. "expand_refs" is not done by
  // Assemble: the caller expands the assembled hits (ExpandRefs) where the cited
  // documents are.
  Status Gather(const RequestContext& ctx, const QueryRequest& req, const Input& in,
                const std::vector<uint32_t>& vector_shards, const std::vector<uint32_t>& keyword_shards,
                ShardCandidates* out) const;
  static Status Assemble(const RequestContext& ctx, const QueryRequest& req, QueryMode mode, size_t dim,
                         const std::vector<ShardCandidates>& parts, QueryResult* result);
  // How deep each candidate list goes (grouping, diversity and hybrid fusion want more
  // than k).
  static size_t Depth(const QueryRequest& req, QueryMode mode);
  // How many hits the answer chooses among (grouping and diversity want more than k).
  static size_t Want(const QueryRequest& req);
  // The first steps of ranking the candidate lists (best first): the fusion the request
  // asks for (or a single mode's one list), at most `want`; then, when asked, the best
  // chunk of each document. Rank runs these before diversity and the cut to k; the query
  // cache reruns them to re-check a cached answer (engine/keyword_evidence.h).
  static std::vector<ScoredSlot> Fuse(const QueryRequest& req, QueryMode mode, std::vector<ScoredSlot> by_vector,
                                      std::vector<ScoredSlot> by_keyword, size_t want);
  static void GroupByDocument(const std::function<std::string_view(uint32_t)>& doc_of, std::vector<ScoredSlot>* ranked);
  // Appends to *hits the best chunk of each document the hits cite and do not already
  // contain; *cited receives every id cited.
  void ExpandRefs(const std::vector<float>& query, const std::vector<std::string>& terms, std::vector<QueryHit>* hits,
                  std::vector<std::string>* cited) const;

 private:
  // After the candidate lists (best first): the fusion of hybrid lists, grouping by
  // document and diversity, the same over one node's lists and over merged parts.
  // doc_of: a chunk's document; vector_of: its vector (false when it has none).
  static Status Rank(const RequestContext& ctx, const QueryRequest& req, QueryMode mode,
                     std::vector<ScoredSlot> by_vector, std::vector<ScoredSlot> by_keyword, size_t dim,
                     const std::function<std::string_view(uint32_t)>& doc_of,
                     const std::function<bool(uint32_t, float*)>& vector_of, std::vector<ScoredSlot>* ranked);

  const DocumentTable& table_;
  const ShardSet& shards_;
  const Analyzer& analyzer_;
  const CollectionConfig& config_;
};

}  // namespace contextd
