// Retrieval quality on a BEIR dataset (issue 6), side by side with Xapian's BM25 in one run:
//   contextd: the engine in-process as the server runs it (chunked documents, English
//   analyzer, BM25 k1 = 1.2, b = 0.75, best chunk per document), keyword, vector and hybrid
//   (RRF and weighted fusion) with the glove embedder;
//   Xapian 1.4 (Debian libxapian-dev): whole documents (title + text), English Snowball
//   stemming, BM25Weight(k1 = 1.2, k2 = 0, k3 = 1, b = 0.75, min_normlen = 0.5) and
//   Xapian's own defaults (k1 = 1, b = 0.5), the query as an OR of its terms.
// Prints one JSON line per system: nDCG@10, recall@100, MRR@10, mean latency.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <xapian.h>
#include <CLI/CLI.hpp>

#include "common/json.h"
#include "common/metrics.h"
#include "engine/engine.h"
#include "eval/metrics.h"
#include "server/request_codec.h"

namespace contextd {
namespace {

struct Scores {
  double ndcg = 0, recall = 0, mrr = 0, seconds = 0;
  size_t queries = 0;
  void Add(const std::vector<std::string>& ranked, const Judgements& j) {
    ndcg += NdcgAtK(ranked, j, 10);
    recall += RecallAtK(ranked, j, 100);
    mrr += MrrAtK(ranked, j, 10);
    ++queries;
  }
  void Print(const std::string& system) const {
    const double n = static_cast<double>(std::max<size_t>(queries, 1));
    std::printf(
        "{\"system\":\"%s\",\"queries\":%zu,\"ndcg@10\":%.4f,\"recall@100\":%.4f,\"mrr@10\":%.4f,"
        "\"mean_ms\":%.3f}\n",
        system.c_str(), queries, ndcg / n, recall / n, mrr / n, seconds * 1000 / n);
    std::fflush(stdout);
  }
};

int Main(int argc, char** argv) {
  CLI::App app{"Retrieval quality: contextd vs Xapian BM25 on BEIR data"};
  std::string data = "../shared/data/scifact", split = "train", models = "models";
  app.add_option("--data", data, "BEIR dataset directory (corpus.jsonl, queries.SPLIT.jsonl, qrels/SPLIT.tsv)");
  app.add_option("--split", split);
  app.add_option("--models", models);
  CLI11_PARSE(app, argc, argv);

  auto queries = ReadBeirQueries(data + "/queries." + split + ".jsonl");
  auto qrels = ReadBeirQrels(data + "/qrels/" + split + ".tsv");
  if (!queries.ok() || !qrels.ok()) {
    std::fprintf(stderr, "cannot read queries or qrels under %s\n", data.c_str());
    return 1;
  }
  auto read = ReadBeirCorpus(data + "/corpus.jsonl");
  if (!read.ok()) {
    std::fprintf(stderr, "%s\n", read.status().ToString().c_str());
    return 1;
  }
  const std::vector<BeirDoc>& corpus = *read;
  std::fprintf(stderr, "%zu documents, %zu queries\n", corpus.size(), queries->size());
  const std::string work = std::filesystem::temp_directory_path() / ("contextd-quality-" + std::to_string(getpid()));
  std::filesystem::remove_all(work);

  // --- contextd, in-process.
  {
    MetricsRegistry metrics;
    EngineOptions eo;
    eo.data_dir = work + "/contextd";
    eo.models_dir = models;
    auto engine = Engine::Open(eo, &metrics);
    EmbedderRegistry catalog(eo.models_dir);  // resolves the spec as the engine's registry does
    if (!engine.ok()) return 1;
    auto c = CreateFromSpec(*(*engine), catalog, kDefaultTenant, "beir", *ParseJson(R"({"embedder":"glove"})"));
    if (!c.ok()) return 1;
    for (size_t i = 0; i < corpus.size(); i += 256) {
      std::vector<DocumentInput> batch;
      for (size_t j = i; j < std::min(corpus.size(), i + 256); ++j) {
        DocumentInput d;
        d.id = corpus[j].id;
        d.title = corpus[j].title;
        d.text = corpus[j].text;
        batch.push_back(std::move(d));
      }
      UpsertResult r;
      if (Status st = (*c)->Upsert(std::move(batch), &r); !st.ok()) {
        std::fprintf(stderr, "%s\n", st.ToString().c_str());
        return 1;
      }
    }
    struct Run {
      const char* name;
      const char* body;
    } runs[] = {
        {"contextd keyword", R"({"mode":"keyword"})"},
        {"contextd keyword title_boost=0.25", R"({"mode":"keyword","bm25":{"title_boost":0.25}})"},
        {"contextd keyword title_boost=1", R"({"mode":"keyword","bm25":{"title_boost":1}})"},
        {"contextd vector (glove)", R"({"mode":"vector"})"},
        {"contextd hybrid rrf (glove)", R"({"mode":"hybrid"})"},
        {"contextd hybrid weighted alpha=0.15 (glove)", R"({"mode":"hybrid","fusion":"weighted","alpha":0.15})"},
        {"contextd hybrid weighted alpha=0.3 (glove)", R"({"mode":"hybrid","fusion":"weighted","alpha":0.3})"},
    };
    for (const Run& run : runs) {
      Scores s;
      for (const BeirQuery& q : *queries) {
        auto judged = qrels->find(q.id);
        if (judged == qrels->end()) continue;
        Json body = *ParseJson(run.body);
        body["query"] = q.text;
        body["k"] = 100;
        body["group_by"] = "document";
        auto req = ParseQueryRequest(body, (*c)->config().dim, true);
        const auto start = std::chrono::steady_clock::now();
        auto res = (*c)->Query(*req);
        s.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::vector<std::string> ranked;
        for (const auto& h : res->hits) ranked.push_back(h.doc_id);
        s.Add(ranked, judged->second);
      }
      s.Print(run.name);
    }
  }

  // --- Xapian.
  {
    Xapian::WritableDatabase db(work + "/xapian", Xapian::DB_CREATE_OR_OVERWRITE);
    Xapian::TermGenerator tg;
    const Xapian::Stem stem("english");
    tg.set_stemmer(stem);
    tg.set_stemming_strategy(Xapian::TermGenerator::STEM_ALL);
    for (const BeirDoc& d : corpus) {
      Xapian::Document doc;
      tg.set_document(doc);
      tg.index_text(d.title);
      tg.increase_termpos();
      tg.index_text(d.text);
      doc.set_data(d.id);
      db.add_document(doc);
    }
    db.commit();
    struct Weighting {
      const char* name;
      double k1, b;
    } weightings[] = {{"xapian bm25 k1=1.2 b=0.75", 1.2, 0.75}, {"xapian bm25 defaults k1=1 b=0.5", 1.0, 0.5}};
    for (const Weighting& w : weightings) {
      Scores s;
      Xapian::Enquire enquire(db);
      enquire.set_weighting_scheme(Xapian::BM25Weight(w.k1, 0, 1, w.b, 0.5));
      for (const BeirQuery& q : *queries) {
        auto judged = qrels->find(q.id);
        if (judged == qrels->end()) continue;
        const auto start = std::chrono::steady_clock::now();
        // The query's terms as the documents' were made, ORed: bag-of-words BM25.
        Xapian::Document scratch;
        tg.set_document(scratch);
        tg.index_text(q.text);
        std::vector<std::string> terms(scratch.termlist_begin(), scratch.termlist_end());
        enquire.set_query(Xapian::Query(Xapian::Query::OP_OR, terms.begin(), terms.end()));
        Xapian::MSet mset = enquire.get_mset(0, 100);
        std::vector<std::string> ranked;
        for (auto it = mset.begin(); it != mset.end(); ++it) ranked.push_back(it.get_document().get_data());
        s.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        s.Add(ranked, judged->second);
      }
      s.Print(w.name);
    }
  }
  std::filesystem::remove_all(work);
  return 0;
}

}  // namespace
}  // namespace contextd

int main(int argc, char** argv) { return contextd::Main(argc, argv); }
