#include "index/bm25_index.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>

#include <gtest/gtest.h>

#include "index/bm25_test_util.h"

namespace contextd {
namespace {

// Lucene BM25 by hand: idf = ln(1 + (N - df + 0.5) / (df + 0.5)),
// score = idf * tf / (tf + k1 * (1 - b + b * dl / avgdl)).
double Expected(double tf, double df, double n, double dl, double avgdl) {
  double idf = std::log(1 + (n - df + 0.5) / (df + 0.5));
  return idf * tf / (tf + 1.2 * (1 - 0.75 + 0.75 * dl / avgdl));
}

class Bm25Test : public ::testing::Test {
 protected:
  void SetUp() override {
    index_.Add(0, {"cat", "sat", "mat"});
    index_.Add(1, {"cat", "cat", "chase", "mouse", "garden", "tree"});
    index_.Add(2, {"dog", "bark"});
  }
  Bm25Index index_;
};

TEST_F(Bm25Test, ScoresMatchHandComputedValues) {
  const double avgdl = (3 + 6 + 2) / 3.0;
  auto hits = index_.Search({"cat"}, 10, nullptr);
  ASSERT_EQ(hits.size(), 2u);
  double s0 = Expected(1, 2, 3, 3, avgdl), s1 = Expected(2, 2, 3, 6, avgdl);
  // doc 1 has cat twice but is twice as long
  EXPECT_EQ(hits[0].slot, s1 > s0 ? 1u : 0u);
  for (const auto& h : hits) EXPECT_NEAR(h.score, h.slot == 0 ? s0 : s1, 1e-5);
}

TEST_F(Bm25Test, MultiTermScoresAddUpAndRepeatsCountOnce) {
  const double avgdl = 11 / 3.0;
  auto hits = index_.Search({"dog", "bark", "dog"}, 10, nullptr);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].slot, 2u);
  EXPECT_NEAR(hits[0].score, 2 * Expected(1, 1, 3, 2, avgdl), 1e-5);
}

TEST_F(Bm25Test, QueryTimeParametersAndTermWeights) {
  const double avgdl = 11 / 3.0;
  // k1 = 2, b = 0: tf saturation without length normalisation, by hand.
  Bm25Params p;
  p.k1 = 2.0f;
  p.b = 0.0f;
  auto hits = index_.Search({"cat"}, 10, nullptr, &p);
  ASSERT_EQ(hits.size(), 2u);
  const double idf = std::log(1 + (3 - 2 + 0.5) / (2 + 0.5));
  EXPECT_EQ(hits[0].slot, 1u) << "without length normalisation two cats beat one";
  EXPECT_NEAR(hits[0].score, idf * 2 / (2 + 2.0), 1e-5);
  EXPECT_NEAR(hits[1].score, idf * 1 / (1 + 2.0), 1e-5);
  // Weights scale each term's contribution: dog x 3 + bark x 0.
  const std::vector<float> weights = {3.0f, 0.0f};
  auto weighted = index_.Search({"dog", "bark"}, 10, nullptr, nullptr, &weights);
  ASSERT_EQ(weighted.size(), 1u);
  EXPECT_NEAR(weighted[0].score, 3 * Expected(1, 1, 3, 2, avgdl), 1e-5);
}

TEST_F(Bm25Test, RemoveUpdatesStatistics) {
  index_.Remove(1);
  EXPECT_EQ(index_.doc_count(), 2u);
  auto hits = index_.Search({"cat"}, 10, nullptr);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].slot, 0u);
  EXPECT_NEAR(hits[0].score, Expected(1, 1, 2, 3, 2.5), 1e-5);
  EXPECT_TRUE(index_.Search({"mouse"}, 10, nullptr).empty());
  index_.Add(1, {"mouse"});  // slot reuse
  EXPECT_EQ(index_.Search({"mouse"}, 10, nullptr)[0].slot, 1u);
}

// Deleting what was inserted gives the memory back: emptied posting lists are freed and
// their terms forgotten (a churn of distinct words, ids or numbers would otherwise grow the
// dictionary for good), and forgotten terms' ids are reused with correct scores.
TEST(Bm25MemoryTest, DeletesGiveBackTheListsAndTermsInsertsTook) {
  Bm25Index index;
  index.Add(0, {"kept", "words"});
  const size_t base = index.memory_bytes();
  for (uint32_t slot = 1; slot <= 3000; ++slot) {
    std::vector<std::string> terms;
    for (int i = 0; i < 40; ++i) terms.push_back("unique_term_number_" + std::to_string(slot * 40 + i));
    terms.push_back("common");
    index.Add(slot, terms);
  }
  EXPECT_EQ(index.term_count(), 2u + 3000 * 40 + 1);
  const size_t full = index.memory_bytes();
  // Most removed first: the term ids are renumbered on the way (past 16k forgotten), and the
  // survivors score as in an index that only ever held them.
  Bm25Index survivors;
  survivors.Add(0, {"kept", "words"});
  for (uint32_t slot = 1; slot <= 3000; ++slot) {
    if (slot % 100 != 0) {
      index.Remove(slot);
      continue;
    }
    std::vector<std::string> terms;
    for (int i = 0; i < 40; ++i) terms.push_back("unique_term_number_" + std::to_string(slot * 40 + i));
    terms.push_back("common");
    survivors.Add(slot, terms);
  }
  EXPECT_EQ(index.term_count(), survivors.term_count());
  EXPECT_EQ(index.StatsDigest(), survivors.StatsDigest());
  for (const std::string q : {"common", "unique_term_number_4001", "unique_term_number_120039", "words"}) {
    auto a = index.Search({q, "kept"}, 50);
    auto b = survivors.Search({q, "kept"}, 50);
    ASSERT_EQ(a.size(), b.size()) << q;
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].slot, b[i].slot) << q;
      EXPECT_FLOAT_EQ(a[i].score, b[i].score) << q;
    }
  }
  for (uint32_t slot = 100; slot <= 3000; slot += 100) index.Remove(slot);
  EXPECT_EQ(index.term_count(), 2u);
  // What stays is by slot (a length and an empty term list each) and up to 16k forgotten
  // term ids (renumbered away past that), not by posting.
  EXPECT_LT(index.memory_bytes(), base + 3001 * 64 + (1 << 14) * 48) << "full " << full;
  EXPECT_GT(full, 10 * (index.memory_bytes() - base));
  EXPECT_TRUE(index.Search({"common"}, 10).empty());
  // New terms take the forgotten ids; scores are those of a fresh index.
  index.Add(5, {"fresh", "fresh", "words"});
  Bm25Index fresh;
  fresh.Add(0, {"kept", "words"});
  fresh.Add(5, {"fresh", "fresh", "words"});
  for (const char* q : {"fresh", "words", "kept", "unique_term_number_77"}) {
    auto a = index.Search({q}, 10);
    auto b = fresh.Search({q}, 10);
    ASSERT_EQ(a.size(), b.size()) << q;
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].slot, b[i].slot) << q;
      EXPECT_FLOAT_EQ(a[i].score, b[i].score) << q;
    }
  }
  EXPECT_EQ(index.StatsDigest(), fresh.StatsDigest());
}

// A long list that loses most of its postings gives back capacity, and keeps the rest.
TEST(Bm25MemoryTest, ASparseListShrinksAndKeepsItsPostings) {
  Bm25Index index;
  for (uint32_t slot = 0; slot < 20000; ++slot) index.Add(slot, {"everywhere"});
  const size_t full = index.memory_bytes();
  for (uint32_t slot = 0; slot < 20000; ++slot) {
    if (slot % 100 != 0) index.Remove(slot);
  }
  EXPECT_LT(index.memory_bytes(), full - 20000 * 8 * 3 / 4 + 20000 * 32);
  auto hits = index.Search({"everywhere"}, 1000);
  ASSERT_EQ(hits.size(), 200u);
  for (const auto& h : hits) EXPECT_EQ(h.slot % 100, 0u);
}

TEST(TermListTest, PacksTermsInOrder) {
  TermList empty;
  EXPECT_EQ(empty.size(), 0u);
  TermList list(std::vector<std::string>{"cat", "", "sat", "cat"});
  ASSERT_EQ(list.size(), 4u);
  EXPECT_EQ(list[0], "cat");
  EXPECT_EQ(list[1], "");
  EXPECT_EQ(list[2], "sat");
  EXPECT_EQ(list[3], "cat");
  list.Add("mat");
  EXPECT_EQ(list[4], "mat");
  // Indexed packed or as strings, the same scores.
  Bm25Index a, b;
  a.Add(0, list);
  a.Add(1, TermList(std::vector<std::string>{"mat", "dog"}));
  b.Add(0, std::vector<std::string>{"cat", "", "sat", "cat", "mat"});
  b.Add(1, std::vector<std::string>{"mat", "dog"});
  EXPECT_EQ(a.StatsDigest(), b.StatsDigest());
  EXPECT_FLOAT_EQ(a.Search({"cat"}, 1)[0].score, b.Search({"cat"}, 1)[0].score);

  // Runs: one list cut into pieces (a document's chunks), each read back alone.
  TermList runs;
  for (const char* t : {"cat", "sat"}) runs.Add(t);
  runs.EndRun();
  runs.EndRun();  // an empty run
  for (const char* t : {"mat", "", "dog"}) runs.Add(t);
  runs.EndRun();
  ASSERT_EQ(runs.runs(), 3u);
  EXPECT_EQ(runs.size(), 5u);
  ASSERT_EQ(runs.run(0).size(), 2u);
  EXPECT_EQ(runs.run(0)[1], "sat");
  EXPECT_EQ(runs.run(1).size(), 0u);
  ASSERT_EQ(runs.run(2).size(), 3u);
  EXPECT_EQ(runs.run(2)[0], "mat");
  EXPECT_EQ(runs.run(2)[1], "");
  EXPECT_EQ(runs.run(2)[2], "dog");
  Bm25Index c;
  c.Add(1, runs.run(2));
  EXPECT_EQ(c.Search({"dog"}, 1)[0].slot, 1u);
  EXPECT_TRUE(c.Search({"cat"}, 1).empty()) << "only the run's own terms are indexed";
}

// A counted run (each term once, with its count: how an upsert's terms travel the
// cluster's log) indexes exactly as the same occurrences listed one by one.
TEST(TermListTest, ACountedRunIndexesLikeItsOccurrences) {
  TermList occurrences, counted;
  for (const char* t : {"cell", "stem", "cell", "", "dna", "cell"}) occurrences.Add(t);
  occurrences.EndRun();
  for (const char* t : {"dna", "dna"}) occurrences.Add(t);
  occurrences.EndRun();
  counted.AddCounted("dna", 1);  // any order within a run
  counted.AddCounted("cell", 3);
  counted.AddCounted("stem", 1);
  counted.AddCounted("", 1);
  counted.EndRun();
  counted.AddCounted("dna", 2);
  counted.EndRun();
  ASSERT_TRUE(counted.counted());
  EXPECT_FALSE(occurrences.counted());
  ASSERT_EQ(counted.run(1).size(), 1u);
  EXPECT_EQ(counted.run(1).count(0), 2u);
  EXPECT_EQ(occurrences.run(1).count(0), 1u);

  Bm25Index a, b;
  for (size_t r = 0; r < 2; ++r) {
    a.Add(static_cast<uint32_t>(r), occurrences.run(r));
    b.Add(static_cast<uint32_t>(r), counted.run(r));
  }
  EXPECT_EQ(a.StatsDigest(), b.StatsDigest());
  for (const char* q : {"cell", "dna", "stem"}) {
    const auto x = a.Search({q}, 2), y = b.Search({q}, 2);
    ASSERT_EQ(x.size(), y.size()) << q;
    for (size_t i = 0; i < x.size(); ++i) {
      EXPECT_EQ(x[i].slot, y[i].slot) << q;
      EXPECT_FLOAT_EQ(x[i].score, y[i].score) << q;
    }
  }
  uint32_t len_a = 0, len_b = 0;
  EXPECT_EQ(SortedTermsOf(a, 0, &len_a), SortedTermsOf(b, 0, &len_b));
  EXPECT_EQ(len_a, 6u);
  EXPECT_EQ(len_b, 6u);
  a.Remove(0);
  b.Remove(0);
  EXPECT_EQ(a.StatsDigest(), b.StatsDigest());
}

// Numbered terms (a log record's words) are looked up once per batch through a
// TermIdCache, and index exactly as without it, even when a removal between two runs frees
// a cached term's id and another term takes it.
TEST(TermListTest, NumberedTermsResolvedOnceIndexAsTheirNames) {
  TermList first, second;
  first.AddCounted("cell", 2, 0);
  first.AddCounted("dna", 1, 1);
  first.EndRun();
  second.AddCounted("dna", 3, 1);
  second.AddCounted("cell", 1, 0);
  second.EndRun();
  ASSERT_TRUE(first.run(0).numbered());
  EXPECT_EQ(second.run(0).word(1), 0u);
  EXPECT_FALSE(TermList(std::vector<std::string>{"a"}).all().numbered());

  Bm25Index cached, plain;
  TermIdCache ids;
  cached.Add(0, first.run(0), &ids);
  plain.Add(0, first.run(0));
  // Slot 0 removed: "cell" and "dna" are forgotten, their ids free; "rna" takes one.
  cached.Remove(0);
  plain.Remove(0);
  cached.Add(1, std::vector<std::string>{"rna"});
  plain.Add(1, std::vector<std::string>{"rna"});
  cached.Add(2, second.run(0), &ids);
  plain.Add(2, second.run(0));
  EXPECT_EQ(cached.StatsDigest(), plain.StatsDigest());
  ASSERT_EQ(cached.Search({"rna"}, 5).size(), 1u);
  EXPECT_EQ(cached.Search({"rna"}, 5)[0].slot, 1u) << "a stale id would have put slot 2 under rna";
  ASSERT_EQ(cached.Search({"cell"}, 5).size(), 1u);
  EXPECT_EQ(cached.Search({"cell"}, 5)[0].slot, 2u);
  uint32_t len = 0;
  EXPECT_EQ(SortedTermsOf(cached, 2, &len), (TermCounts{{"cell", 1}, {"dna", 3}}));
  EXPECT_EQ(len, 4u);
}

TEST_F(Bm25Test, FilterAndUnknownTerms) {
  EXPECT_TRUE(index_.Search({"unicorn"}, 10, nullptr).empty());
  SlotBitset only_zero(3);
  only_zero.Set(0);
  auto hits = index_.Search({"cat"}, 10, &only_zero);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].slot, 0u);
}

// Search over a churned index (holes, reused slots, filters) agrees with scoring every
// document from scratch: the pruning never drops a document that belongs in the top k.
// Run with the default pruning limits and with pruning tried on every query, so both the
// exhaustive and the pruned paths are compared with the reference.
class Bm25ChurnTest : public ::testing::TestWithParam<bool> {};

TEST_P(Bm25ChurnTest, MatchesExhaustiveScoringOnARandomCorpus) {
  std::mt19937 rng(11);
  Bm25Params params;
  if (GetParam()) {
    params.prune_min_postings = 0;
    params.prune_max_k = SIZE_MAX;
  }
  // Zipf-ish vocabulary: low ids are common, so posting lists have very different lengths.
  std::vector<double> weights;
  for (int i = 0; i < 300; ++i) weights.push_back(1.0 / (i + 1));
  std::discrete_distribution<int> word(weights.begin(), weights.end());
  std::uniform_int_distribution<int> len(3, 60);
  Bm25Index index(params);
  std::vector<std::vector<std::string>> docs(2000);
  for (uint32_t d = 0; d < docs.size(); ++d) {
    int l = len(rng);
    for (int i = 0; i < l; ++i) docs[d].push_back("w" + std::to_string(word(rng)));
    index.Add(d, docs[d]);
  }
  for (uint32_t d = 0; d < docs.size(); d += 7) index.Remove(d);  // churn: holes and reuse
  for (uint32_t d = 0; d < docs.size(); d += 14) index.Add(d, docs[(d + 1) % docs.size()]);
  auto live = [&](uint32_t d) { return d % 7 != 0 || d % 14 == 0; };
  auto content = [&](uint32_t d) -> const std::vector<std::string>& {
    return d % 14 == 0 ? docs[(d + 1) % docs.size()] : docs[d];
  };

  for (int trial = 0; trial < 400; ++trial) {
    std::vector<std::string> query;
    int terms = 1 + trial % 12;
    for (int i = 0; i < terms; ++i) query.push_back("w" + std::to_string(word(rng)));
    // Small k prunes hardest (the k-th score is high early); 60 is a deep hybrid window.
    // Without pruning, k 1 and 3 take the best-block-first selection (32 blocks of 64
    // slots here) and 10 and 60 the compacting one.
    const size_t ks[] = {60, 10, 1, 3};
    size_t k = ks[trial % 4];
    SlotFilter filter;
    SlotBitset allowed(docs.size());
    if (trial % 5 == 1) {
      filter = [](uint32_t s) { return s % 5 != 0; };
      for (uint32_t d = 0; d < docs.size(); ++d) {
        if (filter(d)) allowed.Set(d);
      }
    }

    // Exhaustive reference from the same per-term formula.
    std::vector<std::string> unique;
    for (auto& t : query)
      if (std::find(unique.begin(), unique.end(), t) == unique.end()) unique.push_back(t);
    std::map<std::string, uint32_t> df;
    for (uint32_t d = 0; d < docs.size(); ++d) {
      if (!live(d)) continue;
      std::set<std::string> distinct(content(d).begin(), content(d).end());
      for (auto& t : distinct) ++df[t];
    }
    std::vector<std::pair<float, uint32_t>> expected;
    for (uint32_t d = 0; d < docs.size(); ++d) {
      if (!live(d) || (filter && !filter(d))) continue;
      float score = 0;
      for (auto& t : unique) {
        uint32_t tf = std::count(content(d).begin(), content(d).end(), t);
        if (tf) score += index.TermScore(tf, df[t], content(d).size());
      }
      if (score > 0) expected.push_back({-score, d});
    }
    std::sort(expected.begin(), expected.end());
    auto hits = index.Search(query, k, filter ? &allowed : nullptr);
    ASSERT_EQ(hits.size(), std::min(k, expected.size())) << "trial " << trial;
    for (size_t i = 0; i < hits.size(); ++i) {
      EXPECT_NEAR(hits[i].score, -expected[i].first, 1e-4) << "trial " << trial << " rank " << i;
      // Ids may swap only between near-equal scores.
      if (hits[i].slot != expected[i].second) {
        EXPECT_NEAR(-expected[i].first, hits[i].score, 1e-4);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(PruneAlwaysOrByDefault, Bm25ChurnTest, ::testing::Bool());

}  // namespace
}  // namespace contextd
