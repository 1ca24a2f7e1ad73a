// Retrieval quality metrics as BEIR computes them (pytrec_eval's definitions), and readers
// for BEIR-layout files (queries.jsonl, qrels/*.tsv).
//
// Thread safety: free functions and values.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace contextd {

// Judgements of one query: document id -> graded relevance (> 0 is relevant).
using Judgements = std::map<std::string, int>;

// nDCG@k with graded gains (rel / log2(rank + 1)), against the ideal ordering of every
// judged document; 0 when nothing is relevant.
double NdcgAtK(const std::vector<std::string>& ranked, const Judgements& qrels, size_t k);
// Fraction of the relevant documents found in the top k.
double RecallAtK(const std::vector<std::string>& ranked, const Judgements& qrels, size_t k);
// 1 / rank of the first relevant document in the top k, else 0.
double MrrAtK(const std::vector<std::string>& ranked, const Judgements& qrels, size_t k);

struct BeirQuery {
  std::string id;
  std::string text;
};
// queries.jsonl: one {"_id","text",..} per line. Errors name the file and line.
StatusOr<std::vector<BeirQuery>> ReadBeirQueries(const std::string& path);
struct BeirDoc {
  std::string id;
  std::string title;
  std::string text;
};
// corpus.jsonl: one {"_id","title"?,"text"} per line. Errors name the file and line.
StatusOr<std::vector<BeirDoc>> ReadBeirCorpus(const std::string& path);
// qrels TSV: "query-id<TAB>corpus-id<TAB>score" with a header line.
StatusOr<std::map<std::string, Judgements>> ReadBeirQrels(const std::string& path);

// Latency percentile (p in [0, 100]) of `values`, nearest rank; 0 when empty.
double Percentile(std::vector<double> values, double p);

}  // namespace contextd
