// The update log and the one apply path: mutations round-trip through their wire form,
// the applied sequence tolerates out-of-order finishes, and replicas fed the same
// mutations (one of them killed and replayed half-way) end in the same state.
#include "engine/update_log.h"
#include "server/request_codec.h"

#include <map>
#include <random>
#include <set>

#include <gtest/gtest.h>

#include "engine/document_table.h"
#include "engine/mutation.h"
#include "engine/wire_format.h"
#include "index/bm25_test_util.h"
#include "test_engine.h"
#include "test_util.h"
#include "text/analyzer.h"

namespace contextd {
namespace {

std::vector<std::string> ChunkTexts(const MutationDocument& d) {
  std::vector<std::string> out;
  for (size_t j = 0; j < d.chunks.size(); ++j) out.emplace_back(d.chunk(j));
  return out;
}

Mutation SampleUpsert() {
  Mutation m;
  m.sequence = 42;
  m.kind = MutationKind::kUpsertDocuments;
  m.tenant = "acme";
  m.collection = "docs";
  m.collection_id = 7;
  m.dim = 2;
  MutationDocument d;
  d.id = "d1";
  d.title = "T";
  d.text = "alpha beta";
  d.metadata = J(R"({"lang":"en","n":3})");
  d.refs = {"d0"};
  d.AddChunk("alpha");
  d.AddChunk("beta");
  m.documents.push_back(d);
  m.vectors = {1, 0, 0, 1};
  return m;
}

TEST(MutationTest, RoundTripsThroughItsWireForm) {
  const Mutation m = SampleUpsert();
  auto back = DecodeMutation(EncodeMutation(m));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->sequence, 42u);
  EXPECT_EQ(back->tenant, "acme");
  EXPECT_EQ(back->collection_id, 7u);
  ASSERT_EQ(back->documents.size(), 1u);
  EXPECT_EQ(back->documents[0].metadata.Dump(), m.documents[0].metadata.Dump());
  EXPECT_EQ(back->documents[0].refs, m.documents[0].refs);
  EXPECT_EQ(ChunkTexts(back->documents[0]), ChunkTexts(m.documents[0]));
  EXPECT_EQ(back->vectors, m.vectors);

  Mutation create;
  create.kind = MutationKind::kCreateCollection;
  create.collection = "c";
  create.config = R"({"dim":3})";
  EXPECT_EQ(DecodeMutation(EncodeMutation(create))->config, create.config);
  Mutation del;
  del.kind = MutationKind::kDeleteDocument;
  del.doc_id = "gone";
  EXPECT_EQ(DecodeMutation(EncodeMutation(del))->doc_id, "gone");
  Mutation turn;
  turn.kind = MutationKind::kAppendTurn;
  turn.session = "chat-1";
  turn.role = "user";
  turn.content = "hello";
  turn.at_ms = 1764800000123;
  turn.ttl_s = 60;
  auto t = DecodeMutation(EncodeMutation(turn));
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->session, "chat-1");
  EXPECT_EQ(t->content, "hello");
  EXPECT_EQ(t->at_ms, turn.at_ms);
  EXPECT_EQ(t->ttl_s, 60);
  Mutation feedback = NewMutation(MutationKind::kCacheFeedback, "acme");
  feedback.collection = "acme/faq";
  feedback.doc_id = "0123";
  feedback.config = R"({"similarity":0.9,"confidence":0.4,"correct":false})";
  auto f = DecodeMutation(EncodeMutation(feedback));
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->kind, MutationKind::kCacheFeedback);
  EXPECT_EQ(f->doc_id, "0123");
  EXPECT_EQ(f->config, feedback.config);
  EXPECT_FALSE(DecodeMutation(EncodeMutation(feedback).substr(0, 12)).ok()) << "cut short";
}

// Chunks cut from their document's text travel as offset and length (the text is not sent
// twice); any other chunk as its bytes. Records of version 1 (every chunk's bytes), still
// in a log written before, decode as they did.
TEST(MutationTest, ChunksTravelAsSpansOfTheirTextAndVersionOneStillDecodes) {
  Mutation m = SampleUpsert();
  MutationDocument& d = m.documents[0];
  d.text = "the quick brown fox jumps over the lazy dog; the quick brown fox again";
  // Overlapping pieces, a repeated one (its second occurrence), one not in the text, an empty one.
  const std::vector<std::string> chunks = {"the quick brown fox", "brown fox jumps over", "the quick brown fox again",
                                           "not in the text", ""};
  d.chunks = ChunkSpans();
  for (const auto& c : chunks) d.AddChunk(c);
  EXPECT_TRUE(d.chunks.is_span(0) && d.chunks.is_span(1) && d.chunks.is_span(2));
  EXPECT_EQ(d.chunks.span_begin(2), 45u) << "the repeated piece is its second occurrence";
  EXPECT_FALSE(d.chunks.is_span(3) || d.chunks.is_span(4));
  m.vectors.assign(d.chunks.size() * m.dim, 0.5f);
  const std::string bytes = EncodeMutation(m);
  auto back = DecodeMutation(bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(ChunkTexts(back->documents[0]), chunks);
  EXPECT_EQ(back->documents[0].text, d.text);
  EXPECT_TRUE(back->documents[0].chunks.is_span(1)) << "a decoded span stays a span, not a copy";
  // The same lengths in chunks found nowhere in the text go as bytes: 64 more, less the spans.
  Mutation literal = m;
  literal.documents[0].chunks = ChunkSpans();
  for (const auto& c : chunks) literal.documents[0].AddChunk(std::string(c.size(), 'z'));
  EXPECT_GE(EncodeMutation(literal).size(), bytes.size() + 64 - 3 * 3) << "pieces of the text were sent again";
  // A span past the text's end is refused.
  std::string outside = bytes;
  const std::string span = std::string(1, '\x01') + '\x00' + static_cast<char>(19);  // tag 1, offset 0, length 19
  const size_t at = outside.find(span);
  ASSERT_NE(at, std::string::npos);
  outside[at + 1] = 60;  // offset 60 + 19 > the text's 69 bytes
  auto refused = DecodeMutation(outside);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("outside"), std::string::npos) << refused.status().message();

  // Version 1, written field by field as that version did.
  std::string v1 = {'M', 1, static_cast<char>(MutationKind::kUpsertDocuments)};
  wire::PutVarint(&v1, 42);
  wire::PutBytes(&v1, "acme");
  wire::PutBytes(&v1, "docs");
  wire::PutVarint(&v1, 7);
  wire::PutVarint(&v1, 2);  // dim
  wire::PutVarint(&v1, 1);  // documents
  for (const char* field : {"d1", "T", "alpha beta", R"({"lang":"en"})"}) wire::PutBytes(&v1, field);
  wire::PutVarint(&v1, 0);  // refs
  wire::PutVarint(&v1, 2);  // chunks
  wire::PutBytes(&v1, "alpha");
  wire::PutBytes(&v1, "beta");
  const float vectors[] = {1, 0, 0, 1};
  wire::PutVarint(&v1, 4);
  v1.append(reinterpret_cast<const char*>(vectors), sizeof(vectors));
  auto old = DecodeMutation(v1);
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  EXPECT_EQ(ChunkTexts(old->documents[0]), (std::vector<std::string>{"alpha", "beta"}));
  EXPECT_EQ(old->vectors, std::vector<float>(vectors, vectors + 4));
}

// An upsert carries its chunks' keyword terms as the proposer analysed them, counted: a
// replica indexes them without analysing the text, with the same statistics. A record
// whose terms do not fit its chunks is refused; one without terms (version 2, or a
// mutation nobody analysed) leaves the analysis to the applier.
TEST(MutationTest, AnUpsertsKeywordTermsTravelCounted) {
  auto analyzer = MakeAnalyzer("english").value();
  Mutation m = SampleUpsert();
  MutationDocument& d = m.documents[0];
  d.text = "Cells divide. Dividing cells divide again, and cells die.";
  d.chunks = ChunkSpans();
  d.AddChunk("Cells divide. Dividing cells divide again,");
  d.AddChunk("and cells die.");
  std::vector<std::string> scratch;
  d.terms = DocumentTerms(*analyzer, d, &scratch);
  const std::string bytes = EncodeMutation(m);
  auto back = DecodeMutation(bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  const TermList& terms = back->documents[0].terms;
  ASSERT_EQ(terms.runs(), 2u);
  EXPECT_TRUE(terms.counted());
  EXPECT_LT(terms.run(0).size(), d.terms.run(0).size()) << "repeats travel as counts";
  Bm25Index local, replica;
  for (size_t j = 0; j < 2; ++j) {
    local.Add(static_cast<uint32_t>(j), d.terms.run(j));
    replica.Add(static_cast<uint32_t>(j), terms.run(j));
  }
  EXPECT_EQ(local.StatsDigest(), replica.StatsDigest());
  // Re-encoding a decoded (counted) mutation gives the same record.
  EXPECT_EQ(EncodeMutation(*back), bytes);

  // Without terms: none decoded, and the record is shorter.
  Mutation bare = m;
  bare.documents[0].terms = TermList();
  const std::string bare_bytes = EncodeMutation(bare);
  auto bare_back = DecodeMutation(bare_bytes);
  ASSERT_TRUE(bare_back.ok()) << bare_back.status().ToString();
  EXPECT_EQ(bare_back->documents[0].terms.runs(), 0u);
  // Version 2 had no terms section: the same record less its last byte (form 0) decodes.
  std::string v2 = bare_bytes.substr(0, bare_bytes.size() - 1);
  v2[1] = 2;
  ASSERT_TRUE(DecodeMutation(v2).ok());

  // The terms section follows the vectors: each word named by its bytes the first time,
  // then by number. A number naming no word yet is refused; a word named twice in a chunk
  // is one term counted twice.
  const size_t section = bare_bytes.size() - 1;
  ASSERT_EQ(bytes.substr(0, section), bare_bytes.substr(0, section));
  using Entry = std::pair<std::string, uint64_t>;  // a word ("#N": by number N) and its count
  const auto with_runs = [&](const std::vector<std::vector<Entry>>& runs) {
    std::string out = bytes.substr(0, section);
    wire::PutVarint(&out, 1);
    for (const auto& run : runs) {
      wire::PutVarint(&out, run.size());
      for (const auto& [word, count] : run) {
        if (word[0] == '#') {
          wire::PutVarint(&out, 1 + std::stoull(word.substr(1)));
        } else {
          wire::PutVarint(&out, 0);
          wire::PutBytes(&out, word);
        }
        wire::PutVarint(&out, count);
      }
    }
    return DecodeMutation(out);
  };
  auto fine = with_runs({{{"cell", 3}}, {{"#0", 1}, {"die", 1}, {"#0", 2}}});
  ASSERT_TRUE(fine.ok()) << fine.status().ToString();
  const TermList& made = fine->documents[0].terms;
  EXPECT_EQ(made.run(0)[0], "cell");
  EXPECT_EQ(made.run(0).count(0), 3u);
  EXPECT_EQ(made.run(1)[1], "die");
  Bm25Index twice;
  twice.Add(0, made.run(1));
  uint32_t len = 0;
  EXPECT_EQ(SortedTermsOf(twice, 0, &len), (TermCounts{{"cell", 3}, {"die", 1}}));
  EXPECT_EQ(len, 4u);
  for (const auto& [runs, why] : std::vector<std::pair<std::vector<std::vector<Entry>>, std::string>>{
           {{{{"cell", 3}}, {{"#1", 1}}}, "names no word"},
           {{{{"cell", 0}}, {{"#0", 1}}}, "counted 0 times"},
           {{{{"cell", 3}}}, "truncated terms"}}) {
    auto refused = with_runs(runs);
    ASSERT_FALSE(refused.ok()) << why;
    EXPECT_NE(refused.status().message().find(why), std::string::npos) << refused.status().message();
  }
}

TEST(MutationTest, EveryTruncationOrCorruptionIsRejectedCleanly) {
  Mutation m = SampleUpsert();
  for (const char* run : {"alpha alpha", "beta"}) {
    for (const char* t : {run, "t"}) m.documents[0].terms.Add(t);
    m.documents[0].terms.EndRun();
  }
  const std::string bytes = EncodeMutation(m);
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto m = DecodeMutation(bytes.substr(0, n));
    EXPECT_FALSE(m.ok()) << "a prefix of " << n << " bytes decoded";
    if (!m.ok()) {
      EXPECT_EQ(m.status().reason(), "invalid_mutation");
    }
  }
  EXPECT_FALSE(DecodeMutation(bytes + "x").ok());
  std::string wrong_version = bytes;
  wrong_version[1] = 9;
  EXPECT_FALSE(DecodeMutation(wrong_version).ok());
  // Flipping any byte never crashes (it may still decode, to other content).
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string flipped = bytes;
    flipped[i] = static_cast<char>(flipped[i] ^ 0xff);
    (void)DecodeMutation(flipped);
  }
}

TEST(AppliedSequenceTest, AdvancesOverTheContiguousPrefixOnly) {
  AppliedSequence applied(10);
  EXPECT_FALSE(applied.Begin(10));  // at the watermark: a repeat
  ASSERT_TRUE(applied.Begin(12));
  ASSERT_TRUE(applied.Begin(11));
  EXPECT_FALSE(applied.Begin(12));  // in progress
  applied.Finish(12);
  EXPECT_EQ(applied.value(), 10u);        // 11 is not done
  EXPECT_FALSE(applied.Begin(12));        // done above the watermark
  applied.Finish(11, /*applied=*/false);  // failed to write: may begin again
  EXPECT_EQ(applied.value(), 10u);
  ASSERT_TRUE(applied.Begin(11));
  applied.Finish(11);
  EXPECT_EQ(applied.value(), 12u);
}

// A randomized stream of mutations over two collections: upserts of one to four documents
// of one to five chunks (vectors near eight topics, words from a skewed vocabulary),
// replaces, deletes (some of missing documents, which every replica rejects alike),
// collection "b" dropped and recreated now and then, and shard splits, as the node that
// leads maintenance would log them (into centroids near the topics).
class MutationStream {
 public:
  static constexpr int kDim = 16;

  MutationStream(const Engine& engine, uint32_t seed) : rng_(seed) {
    std::normal_distribution<float> g;
    centers_.resize(8, std::vector<float>(kDim));
    for (auto& c : centers_)
      for (auto& x : c) x = g(rng_);
    for (int i = 0; i < 400; ++i) vocab_.push_back("w" + std::to_string(i));
    const char* spec = R"({"embedder":"none","dim":16,"sharding":{"max_shard_chunks":64}})";
    config_ = ParseCollectionRequest(J(spec), TestEmbedders())->ToJson().Dump();
  }

  // Numbered 1..n, with collection ids filled in (a create's id is its sequence).
  std::vector<Mutation> Generate(size_t n) {
    std::vector<Mutation> out;
    auto push = [&](Mutation m) {
      m.sequence = out.size() + 1;
      if (m.kind == MutationKind::kCreateCollection)
        ids_[m.collection] = m.sequence;
      else
        m.collection_id = ids_[m.collection];
      out.push_back(std::move(m));
    };
    push(Create("a"));
    push(Create("b"));
    while (out.size() < n) {
      const int r = Uniform(1000);
      if (out.size() == n / 4) {
        push(Split("a", 0, 3));  // shards 1, 2, 3
      } else if (out.size() == n / 2) {
        push(Split("a", 2, 2));  // 2 into 4 and 5
        push(Split("a", 2, 2));  // proposed twice: changes nothing
      } else if (out.size() == n / 3) {
        push(Unsplittable("a", 1));  // marked: its graph links on every replica alike
        push(Unsplittable("a", 0));  // split before: changes nothing
      } else if (out.size() == 3 * n / 4) {
        push(Split("b", 0, 2));
      } else if (r < 2) {
        push(Drop("b"));
        push(Create("b"));
      } else if (r < 200) {
        push(Delete(r < 20 ? "never" + std::to_string(r) : Pick()));
      } else {
        push(Upsert(r < 300 ? "b" : "a"));
      }
    }
    out.resize(n);
    return out;
  }

  std::vector<QueryRequest> Queries(size_t n) {
    std::vector<QueryRequest> out;
    for (size_t i = 0; i < n; ++i) {
      QueryRequest q;
      q.k = 10;
      q.text = Words(3);
      q.vector = Vector(Uniform(8));
      q.cache_bypass = true;
      // Routed or not, replicas answer alike: their layouts are the stream's.
      q.all_shards = i % 2 == 0;
      out.push_back(std::move(q));
    }
    return out;
  }

 private:
  int Uniform(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  std::vector<float> Vector(int topic) {
    std::normal_distribution<float> g;
    std::vector<float> v = centers_[topic];
    for (auto& x : v) x += 0.3f * g(rng_);
    return v;
  }
  std::string Words(int n) {
    std::string s;
    for (int i = 0; i < n; ++i) {
      // Skewed: low word numbers are common, as in text.
      const int w = static_cast<int>(vocab_.size() * std::pow(Uniform(10000) / 10000.0, 3));
      if (!s.empty()) s += ' ';
      s += vocab_[w];
    }
    return s;
  }
  std::string Pick() { return "d" + std::to_string(Uniform(300)); }

  Mutation Base(MutationKind kind, const std::string& collection) {
    Mutation m;
    m.kind = kind;
    m.tenant = kDefaultTenant;
    m.collection = collection;
    return m;
  }
  Mutation Create(const std::string& name) {
    Mutation m = Base(MutationKind::kCreateCollection, name);
    m.config = config_;
    return m;
  }
  Mutation Drop(const std::string& name) { return Base(MutationKind::kDropCollection, name); }
  Mutation Split(const std::string& name, uint32_t shard, int ways) {
    Mutation m = Base(MutationKind::kSplitShard, name);
    m.shard = shard;
    m.dim = kDim;
    for (int i = 0; i < ways; ++i)
      for (float x : Vector(Uniform(8))) m.vectors.push_back(x);
    return m;
  }
  Mutation Unsplittable(const std::string& name, uint32_t shard) {
    Mutation m = Base(MutationKind::kShardUnsplittable, name);
    m.shard = shard;
    return m;
  }
  Mutation Delete(const std::string& id) {
    Mutation m = Base(MutationKind::kDeleteDocument, Uniform(4) == 0 ? "b" : "a");
    m.doc_id = id;
    return m;
  }
  Mutation Upsert(const std::string& collection) {
    Mutation m = Base(MutationKind::kUpsertDocuments, collection);
    m.dim = kDim;
    std::set<std::string> ids;
    for (int i = Uniform(4) + 1; i > 0; --i) ids.insert(Pick());
    for (const auto& id : ids) {
      MutationDocument d;
      d.id = id;
      d.title = Uniform(3) == 0 ? Words(2) : "";
      d.metadata = J("{\"topic\":" + std::to_string(Uniform(8)) + "}");
      if (Uniform(5) == 0) d.refs = {Pick()};
      const int topic = Uniform(8);
      for (int c = Uniform(5) + 1; c > 0; --c) {
        const std::string words = Words(4 + Uniform(12));
        for (float x : Vector(topic)) m.vectors.push_back(x);
        d.text += words + " ";
        d.AddChunk(words);
      }
      m.documents.push_back(std::move(d));
    }
    return m;
  }

 private:
  std::mt19937 rng_;
  std::vector<std::vector<float>> centers_;
  std::vector<std::string> vocab_;
  std::string config_;
  std::map<std::string, uint64_t> ids_;
};

using Digests = std::map<std::pair<std::string, std::string>, std::pair<uint64_t, CollectionDigest>>;
using Answers = std::vector<std::string>;

Answers Ask(Engine& engine, const std::vector<QueryRequest>& queries) {
  Answers out;
  for (const char* name : {"a", "b"}) {
    auto c = engine.GetCollection(kDefaultTenant, name);
    if (!c.ok()) continue;
    for (QueryMode mode : {QueryMode::kVector, QueryMode::kKeyword, QueryMode::kHybrid}) {
      for (QueryRequest q : queries) {
        q.mode = mode;
        auto r = (*c)->Query(q);
        EXPECT_TRUE(r.ok()) << r.status().ToString();
        if (!r.ok()) continue;
        std::string line = std::string(name) + "/" + std::string(QueryModeName(mode)) + ":";
        for (const auto& h : r->hits)
          line += " " + h.doc_id + "#" + std::to_string(h.chunk) + "=" + std::to_string(h.score);
        out.push_back(std::move(line));
      }
    }
  }
  return out;
}

void ApplyAll(Engine& engine, const std::vector<Mutation>& stream, size_t from, size_t to) {
  for (size_t i = from; i < to; ++i) {
    ApplyResult r;
    Status st = engine.Apply(stream[i], &r);
    // Rejections (a delete of a missing document) are part of the stream; failures are not.
    ASSERT_TRUE(st.ok() || IsRejection(st)) << "mutation " << stream[i].sequence << ": " << st.ToString();
  }
}

TEST(UpdateLogTest, ReplicasFedTheSameMutationsConvergeAfterAKillAndReplay) {
  TempDir dir_a, dir_b;
  auto a = OpenHandFedEngine(dir_a.path());
  auto b = OpenHandFedEngine(dir_b.path());
  ASSERT_TRUE(a && b);
  MutationStream gen(*a, 2024);
  std::vector<Mutation> stream = gen.Generate(10000);
  const std::vector<QueryRequest> queries = gen.Queries(200);

  ApplyAll(*a, stream, 0, stream.size());
  EXPECT_EQ(a->applied_sequence(), stream.size());
  (*a->GetCollection(kDefaultTenant, "a"))->WaitForSplits();
  EXPECT_EQ((*a->GetCollection(kDefaultTenant, "a"))->shard_count(), 4u) << "the stream's splits, built";

  // Replica b: half the stream, then killed (closed without saving its graphs: every
  // applied mutation is already synced, nothing else survives), reopened and replayed
  // from its applied sequence, with some repeats (a log redelivering) thrown in.
  const size_t half = stream.size() / 2;
  ApplyAll(*b, stream, 0, half);
  b.reset();
  b = OpenHandFedEngine(dir_b.path());
  ASSERT_TRUE(b);
  const uint64_t resumed = b->applied_sequence();
  EXPECT_LE(resumed, half);
  EXPECT_GE(resumed + 20, half) << "only trailing rejections may be above the stored sequence";
  ApplyAll(*b, stream, resumed >= 100 ? resumed - 100 : 0, stream.size());
  ApplyAll(*b, stream, stream.size() - 50, stream.size());
  EXPECT_EQ(b->applied_sequence(), stream.size());

  auto da = a->Digest(), db = b->Digest();
  ASSERT_TRUE(da.ok() && db.ok());
  ASSERT_EQ(da->size(), 2u);
  EXPECT_GT(da->begin()->second.second.chunk_count, 0u);
  EXPECT_TRUE(*da == *db) << "replica digests differ";
  for (const auto& [key, v] : *da) {
    const auto& [id, d] = v;
    EXPECT_EQ((*db)[key].first, id) << key.second;
    EXPECT_EQ((*db)[key].second.document_count, d.document_count) << key.second;
    EXPECT_EQ((*db)[key].second.chunk_count, d.chunk_count) << key.second;
    EXPECT_EQ((*db)[key].second.keywords, d.keywords) << key.second;
  }
  // The same shards, holding the same chunks.
  for (const char* name : {"a", "b"}) {
    auto ca = *a->GetCollection(kDefaultTenant, name), cb = *b->GetCollection(kDefaultTenant, name);
    ca->WaitForSplits();
    cb->WaitForSplits();
    const ShardsReport ra = ca->DescribeShards(), rb = cb->DescribeShards();
    std::map<uint32_t, size_t> sa, sb;
    for (const auto& s : ra.shards) sa[s.id] = s.chunks;
    for (const auto& s : rb.shards) sb[s.id] = s.chunks;
    EXPECT_EQ(sa, sb) << name;
  }
  const Answers qa = Ask(*a, queries), qb = Ask(*b, queries);
  ASSERT_EQ(qa.size(), 2u * 3 * queries.size());
  for (size_t i = 0; i < qa.size(); ++i) ASSERT_EQ(qa[i], qb[i]) << "query answer " << i;
}

// The live write path makes complete mutations: what one engine's proposers commit,
// another engine applies (never embedding) to the same state.
TEST(UpdateLogTest, WhatTheProposersCommitRebuildsTheSameStateElsewhere) {
  TempDir dir_a, dir_b;
  std::vector<Mutation> recorded;
  EngineOptions o;
  o.data_dir = dir_a.path();
  o.models_dir = CONTEXTD_MODELS_DIR;
  o.on_commit = [&](const Mutation& m) { recorded.push_back(m); };
  auto a = std::move(Engine::Open(o, nullptr)).value();
  auto c = *CreateFromSpec(*a, TestEmbedders(), kDefaultTenant, "notes",
                           J(R"({"embedder":"hash","chunking":{"max_tokens":16,"overlap":4}})"));
  std::mt19937 rng(5);
  for (int round = 0; round < 40; ++round) {
    std::vector<DocumentInput> docs(3);
    for (int i = 0; i < 3; ++i) {
      docs[i].id = "n" + std::to_string(rng() % 30);
      docs[i].text = "note " + std::to_string(round) + " about topic " + std::to_string(rng() % 7) +
                     " with many words to cut into several chunks of sixteen tokens each, " + std::to_string(rng());
      docs[i].metadata = J("{\"round\":" + std::to_string(round) + "}");
    }
    UpsertResult r;
    ASSERT_TRUE(c->Upsert(std::move(docs), &r).ok());
    (void)c->DeleteDocument("n" + std::to_string(rng() % 30));  // NotFound is fine
    if (round == 20) {
      ASSERT_TRUE(a->DropCollection(kDefaultTenant, "notes").ok());
      c = *CreateFromSpec(*a, TestEmbedders(), kDefaultTenant, "notes",
                          J(R"({"embedder":"hash","chunking":{"max_tokens":16,"overlap":4}})"));
    }
  }
  // Session turns go through the log too.
  for (int i = 0; i < 6; ++i) {
    SessionTurn t{i % 2 == 0 ? "user" : "assistant", "turn " + std::to_string(i)};
    auto n = a->AppendTurn("chat-" + std::to_string(i % 2), t, /*ttl_s=*/3600);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    EXPECT_EQ(*n, static_cast<size_t>(i / 2 + 1));
  }
  // And the LLM cache's writes.
  ASSERT_TRUE(a->CacheConfigure("answers", {.embedder = "hash", .threshold = 0.8f}).ok());
  std::vector<std::string> entry_ids;
  for (int i = 0; i < 5; ++i) {
    CacheStoreRequest store{.prompt = "question number " + std::to_string(i),
                            .response = J(R"({"text":"answer )" + std::to_string(i) + R"("})"),
                            .scope = J(R"({"model":")" + std::string(i < 3 ? "m1" : "m2") + R"("})")};
    auto id = a->CacheStore("answers", store);
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    entry_ids.push_back(*id);
  }
  // Feedback reaches every replica as the proposer observed it (replicas never embed).
  auto fb = a->CacheFeedback("answers", {entry_ids[1], "question number 1?", false, std::nullopt},
                             RequestContext::Background());
  ASSERT_TRUE(fb.ok()) << fb.status().ToString();
  EXPECT_EQ(fb->state.observations, 1u);
  ASSERT_TRUE(fb->state.entry_floor.has_value());
  EXPECT_EQ(*a->CacheDelete("answers", {{"model", "m2"}}), 2u);
  ASSERT_TRUE(a->CacheDeleteEntry("answers", entry_ids[0]).ok());
  EXPECT_EQ(a->CacheDeleteEntry("answers", entry_ids[0]).code(), StatusCode::kNotFound);
  ASSERT_TRUE(a->AppendTurn("gone", {"user", "bye"}, 0).ok());
  ASSERT_TRUE(a->DeleteSession("gone").ok());
  EXPECT_EQ(a->DeleteSession("never").code(), StatusCode::kNotFound);
  // A create of a name that exists is refused before it reaches the log.
  const size_t before = recorded.size();
  EXPECT_EQ(CreateFromSpec(*a, TestEmbedders(), kDefaultTenant, "notes", J(R"({"embedder":"hash"})")).status().code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(recorded.size(), before);

  auto b = OpenTestEngine(dir_b.path(), nullptr);
  for (const Mutation& m : recorded) {
    // Every mutation crosses the wire form, as a replicated log would carry it.
    auto decoded = DecodeMutation(EncodeMutation(m));
    ASSERT_TRUE(decoded.ok());
    ApplyResult r;
    ASSERT_TRUE(b->Apply(std::move(decoded).value(), &r).ok());
  }
  EXPECT_EQ(b->applied_sequence(), a->applied_sequence());
  auto da = a->Digest(), db = b->Digest();
  ASSERT_TRUE(da.ok() && db.ok());
  ASSERT_EQ(da->size(), 1u);
  EXPECT_GT(da->begin()->second.second.chunk_count, 40u);
  EXPECT_TRUE(*da == *db);
  for (const char* id : {"chat-0", "chat-1"}) {
    auto ta = a->SessionTurns(id), tb = b->SessionTurns(id);
    ASSERT_TRUE(ta.ok() && tb.ok()) << id;
    ASSERT_EQ(ta->size(), 3u);
    ASSERT_EQ(tb->size(), 3u);
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_EQ((*ta)[i]->content, (*tb)[i]->content);
      EXPECT_EQ((*ta)[i]->at_ms, (*tb)[i]->at_ms) << "a replica keeps the proposer's time";
    }
  }
  EXPECT_EQ(b->SessionTurns("gone").status().code(), StatusCode::kNotFound);
  // The cache entries that survived on a are on b, by the same ids; the deleted are not.
  const auto on_b = b->CacheDescribe("answers", RequestContext::Background());
  EXPECT_EQ(on_b->entries, 2u);
  EXPECT_EQ(on_b->feedback.observations, 1u);
  EXPECT_EQ(on_b->feedback.wrong, 1u);
  for (int i = 0; i < 5; ++i) {
    CacheLookupRequest lookup{.prompt = "question number " + std::to_string(i),
                              .scope = J(R"({"model":")" + std::string(i < 3 ? "m1" : "m2") + R"("})")};
    auto hit = b->CacheLookup("answers", lookup, RequestContext::Background());
    ASSERT_TRUE(hit.ok());
    EXPECT_EQ(hit->hit && hit->exact, i == 1 || i == 2) << i;
    if (hit->hit && hit->exact) {
      EXPECT_EQ(hit->id, entry_ids[i]);
    }
  }
  // A turn delivered again (a replay) is kept once.
  for (const Mutation& m : recorded) {
    if (m.kind != MutationKind::kAppendTurn) continue;
    Mutation again = m;
    ApplyResult r;
    ASSERT_TRUE(b->Apply(std::move(again), &r).ok());
  }
  EXPECT_EQ(b->SessionTurns("chat-0")->size(), 3u);
}

}  // namespace
}  // namespace contextd
