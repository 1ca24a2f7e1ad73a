// Verified semantic cache hits (issue 22, part 1), on labelled pairs:
//   mrpc  ../shared/data/mrpc/pairs.dev.tsv: store every sentence 1, look up every sentence 2
//   qqp   ../shared/data/qqp/pairs.dev.tsv (40,427 Quora question pairs), crowded: every
//         question 1 stored in one namespace, every question 2 looked up
// A hit is correct when it returns the pair's own first text (the same text stored for
// another pair counts) and the pair is labelled a paraphrase. Each lookup keeps every
// candidate over a low cosine floor with its verdict, so the curves are computed offline:
//   "cosine"    the nearest candidate, thresholded on its cosine (verification off)
//   "verified"  the most confident candidate that no signal vetoes, thresholded on its
//               confidence (at the namespace's cosine threshold)
// and the adversarial part: every pair that hits at the operating point has its lookup
// prompt changed (a number, a name, a negation added, a direction swapped) and looked up
// again; those must miss. --fit FILE writes one line per (lookup, candidate) of the first
// --fit-pairs QQP pairs with the features and whether the candidate was right, for the
// logistic fit behind the verifier's weights (bench/fit_verifier.py).
// Prints one JSON object per line.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <tuple>

#include <CLI/CLI.hpp>

#include "cache/feedback.h"
#include "cache/llm_cache.h"
#include "embed/embedder_registry.h"
#include "eval/metrics.h"

namespace contextd {
namespace {

struct Pair {
  int label;
  std::string first, second;
};

std::vector<Pair> ReadPairs(const std::string& path) {
  std::vector<Pair> pairs;
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string label, a, b;
    if (std::getline(f, label, '\t') && std::getline(f, a, '\t') && std::getline(f, b, '\t') && !a.empty() &&
        !b.empty())
      pairs.push_back({std::stoi(label), a, b});
  }
  return pairs;
}

struct Outcome {
  std::vector<CacheCandidate> candidates;  // nearest first
  bool exact = false;                      // the text is stored verbatim
};

// Offline: which pair's first text a candidate returned (the response is the pair index).
struct Cache {
  std::unique_ptr<LlmCache> cache;
  std::unordered_map<std::string, size_t> pair_of_id;
};

struct Point {
  double precision, recall;
  size_t hits;
  double label_precision, label_recall;  // GPTCache's scoring: a hit is right when the pair is labelled 1
};

// The answer a policy gives for one lookup: the candidate index, or -1.
using Chooser = std::function<int(const std::vector<CacheCandidate>&)>;

// Whether candidate k of lookup i returned the pair's own first text of a paraphrase pair.
bool Right(const std::vector<Pair>& pairs, size_t i, const CacheCandidate& cand, const Cache& c) {
  auto it = c.pair_of_id.find(cand.id);
  return it != c.pair_of_id.end() && pairs[it->second].first == pairs[i].first && pairs[i].label == 1;
}

// Over the lookups [from, to).
Point Score(const std::vector<Pair>& pairs, const std::vector<Outcome>& outcomes, const Cache& c, const Chooser& choose,
            size_t from = 0, size_t to = SIZE_MAX) {
  size_t hits = 0, correct = 0, positives = 0, labelled = 0;
  for (size_t i = from; i < std::min(to, pairs.size()); ++i) {
    if (outcomes[i].exact) continue;  // verbatim text: an exact hit, not a semantic one
    positives += pairs[i].label == 1;
    const int k = choose(outcomes[i].candidates);
    if (k < 0) continue;
    ++hits;
    labelled += pairs[i].label == 1;
    correct += Right(pairs, i, outcomes[i].candidates[k], c);
  }
  const double h = hits ? static_cast<double>(hits) : 1.0, pos = positives ? static_cast<double>(positives) : 1.0;
  return {correct / h, correct / pos, hits, labelled / h, labelled / pos};
}

int Nearest(const std::vector<CacheCandidate>& c, float threshold) {
  return !c.empty() && c[0].similarity >= threshold ? 0 : -1;
}

int MostConfident(const std::vector<CacheCandidate>& c, float threshold, float min_confidence) {
  int best = -1;
  for (size_t i = 0; i < c.size(); ++i) {
    if (c[i].similarity < threshold || !c[i].verification.vetoed_by.empty()) continue;
    if (best < 0 || c[i].verification.confidence > c[best].verification.confidence) best = static_cast<int>(i);
  }
  return best >= 0 && c[best].verification.confidence >= min_confidence ? best : -1;
}

// The lookup prompt changed so that a correct cache must miss; "" when the change does not
// apply to this prompt.
std::string Perturb(const std::string& s, const std::string& how) {
  std::smatch m;
  if (how == "number") {
    if (!std::regex_search(s, m, std::regex(R"(\d+)"))) return "";
    return m.prefix().str() + std::to_string(std::stoll(m.str().substr(0, 9)) + 7) + m.suffix().str();
  }
  if (how == "name") {
    // A capitalised word inside the sentence becomes another name.
    if (!std::regex_search(s, m, std::regex(R"(([a-z,] )([A-Z][a-z]{2,}))"))) return "";
    const std::string repl = m[2].str() == "Norway" ? "Peru" : "Norway";
    return m.prefix().str() + m[1].str() + repl + m.suffix().str();
  }
  if (how == "negation") {
    if (std::regex_search(
            s, m, std::regex(R"(\b(is|are|was|were|can|should|will|does|do|did|has|have)\b)", std::regex::icase)))
      return m.prefix().str() + m.str() + " not" + m.suffix().str();
    return "Not " + s;
  }
  if (how == "direction") {
    // From and to, the two sides of a comparison, a conversion between two names.
    for (const char* pattern :
         {R"(\bfrom (\w+) to (\w+))", R"(\b(\w+) (?:is |are )?(?:\w+er|more \w+|less \w+) than (?:a |an |the )?(\w+))",
          R"(\b([A-Z]\w*) (?:to|into) ([A-Z]\w*))"}) {
      if (!std::regex_search(s, m, std::regex(pattern))) continue;
      if (m[1].str() == m[2].str()) continue;
      std::string swapped = m.str();
      const std::string a = m[1].str(), b = m[2].str();
      const size_t pa = swapped.find(a), pb = swapped.rfind(b);
      swapped = swapped.substr(0, pa) + b + swapped.substr(pa + a.size(), pb - pa - a.size()) + a +
                swapped.substr(pb + b.size());
      return m.prefix().str() + swapped + m.suffix().str();
    }
    return "";
  }
  return "";
}

int Main(int argc, char** argv) {
  CLI::App app{"verified semantic cache hits"};
  std::string shared = "../shared", models = "models", fit, fit_set = "qqp";
  std::string embedder = "glove";
  float threshold = 0.8f, min_confidence = VerifyPolicy().min_confidence;
  size_t fit_pairs = 20000, limit = 0;
  std::vector<std::string> sets = {"mrpc", "qqp"};
  app.add_option("--shared", shared);
  app.add_option("--models", models);
  app.add_option("--embedder", embedder);
  app.add_option("--threshold", threshold, "the namespace's cosine threshold for the verified curve");
  app.add_option("--min-confidence", min_confidence, "the operating point for the adversarial part");
  app.add_option("--sets", sets);
  app.add_option("--limit", limit, "pairs per set (0: all)");
  app.add_option("--fit", fit, "write (lookup, candidate) features of the first --fit-pairs QQP pairs here");
  app.add_option("--fit-pairs", fit_pairs);
  app.add_option("--fit-set", fit_set);
  CLI11_PARSE(app, argc, argv);
  EmbedderRegistry registry(models);
  const std::string work = std::filesystem::temp_directory_path() / ("contextd-verify-" + std::to_string(getpid()));

  for (const std::string& set : sets) {
    std::vector<Pair> pairs = ReadPairs(shared + "/data/" + set + "/pairs.dev.tsv");
    if (limit > 0 && pairs.size() > limit) pairs.resize(limit);
    std::filesystem::remove_all(work);
    Cache c;
    auto opened = LlmCache::Open(work, &registry, SystemClock::Default(), nullptr, /*sync_writes=*/false);
    if (!opened.ok()) return 1;
    c.cache = std::move(opened).value();
    // A low floor: every candidate a sweep could want is kept with its verdict.
    VerifyPolicy policy;
    policy.min_confidence = 0;
    if (!c.cache->Configure(set, {.embedder = embedder, .threshold = 0.5f, .verify = policy.ToJson()}).ok()) return 1;
    for (size_t i = 0; i < pairs.size(); ++i) {
      auto id = c.cache->Store(set, {.prompt = pairs[i].first, .response = Json(static_cast<int64_t>(i))});
      if (id.ok()) c.pair_of_id[*id] = i;
    }
    std::vector<Outcome> outcomes(pairs.size());
    std::vector<double> lookup_ms;
    for (size_t i = 0; i < pairs.size(); ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      auto r = c.cache->Lookup(set, {.prompt = pairs[i].second});
      lookup_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      if (!r.ok()) continue;
      if (r->exact) {  // identical text: one certain candidate
        outcomes[i].exact = true;
        outcomes[i].candidates.push_back({r->id, 1.0f, Verification{1.0f, true, "", Json()}});
      } else {
        outcomes[i].candidates = std::move(r->candidates);
      }
    }
    if (!fit.empty() && set == fit_set) {
      std::ofstream out(fit);
      out << "label\tsimilarity\tlexical\tcontent\tnumbers\tnegation\tantonyms\tnames\tdirection\tquestion\tdetail"
             "\town\tpair_label\tlookup\tcandidate\n";
      for (size_t i = 0; i < std::min(fit_pairs, pairs.size()); ++i) {
        const PromptFacts q = AnalyzePrompt(pairs[i].second);
        for (const CacheCandidate& cand : outcomes[i].candidates) {
          auto it = c.pair_of_id.find(cand.id);
          if (it == c.pair_of_id.end()) continue;
          const bool right = pairs[it->second].first == pairs[i].first && pairs[i].label == 1;
          const VerifyFeatures x = CompareFacts(q, AnalyzePrompt(pairs[it->second].first), cand.similarity);
          out << right << '\t' << x.similarity << '\t' << x.lexical << '\t' << x.content;
          for (float m : x.mismatch) out << '\t' << m;
          out << '\t' << (pairs[it->second].first == pairs[i].first) << '\t' << pairs[i].label << '\t' << i << '\t'
              << it->second << '\n';
        }
      }
    }
    const auto curve = [&](const char* name, const std::function<Chooser(float)>& at, float from, float to,
                           float step) {
      size_t exact = 0;
      for (const Outcome& o : outcomes) exact += o.exact;
      std::printf("{\"set\":\"%s\",\"pairs\":%zu,\"exact_lookups_left_out\":%zu,\"curve\":\"%s\",\"points\":[",
                  set.c_str(), pairs.size(), exact, name);
      bool first = true;
      for (float t = from; t <= to + 1e-6f; t += step) {
        const Point p = Score(pairs, outcomes, c, at(t));
        std::printf(
            "%s{\"at\":%.3f,\"hits\":%zu,\"precision\":%.3f,\"recall\":%.3f,\"label_precision\":%.3f,"
            "\"label_recall\":%.3f}",
            first ? "" : ",", t, p.hits, p.precision, p.recall, p.label_precision, p.label_recall);
        first = false;
      }
      std::printf("]}\n");
    };
    curve(
        "cosine", [](float t) -> Chooser { return [t](const auto& cs) { return Nearest(cs, t); }; }, 0.70f, 1.0f,
        0.025f);
    curve(
        "verified",
        [&](float conf) -> Chooser { return [&, conf](const auto& cs) { return MostConfident(cs, threshold, conf); }; },
        0.05f, 0.95f, 0.05f);
    std::printf("{\"set\":\"%s\",\"lookup_p50_ms\":%.3f,\"lookup_p99_ms\":%.3f}\n", set.c_str(),
                Percentile(lookup_ms, 50), Percentile(lookup_ms, 99));

    // Feedback (POST /v1/cache/{ns}/feedback): the first half of the lookups teach the
    // namespace, as clients checking what they were served (or what a miss listed) would:
    // the most confident candidate no signal vetoes, right or wrong by one of the two
    // scorings ("strict": the pair's own first text; "label": GPTCache's, any entry when
    // the pair is a paraphrase). The namespace keeps the last kFeedbackKept; the threshold
    // it learns for each error bound is scored, by the same rule, on the other half, which
    // taught nothing.
    const size_t train = pairs.size() / 2;
    for (const bool strict : {true, false}) {
      std::vector<FeedbackObservation> observed;
      std::vector<CacheFeedbackWrite> writes;
      for (size_t i = 0; i < train; ++i) {
        if (outcomes[i].exact) continue;
        const int k = MostConfident(outcomes[i].candidates, threshold, 0.0f);
        if (k < 0) continue;
        const CacheCandidate& cand = outcomes[i].candidates[k];
        const bool right = strict ? Right(pairs, i, cand, c) : pairs[i].label == 1;
        observed.push_back({cand.verification.confidence, right});
        writes.push_back({cand.id, cand.similarity, cand.verification.confidence, right});
      }
      if (observed.size() > kFeedbackKept) observed.erase(observed.begin(), observed.end() - kFeedbackKept);
      if (writes.size() > kFeedbackKept) writes.erase(writes.begin(), writes.end() - kFeedbackKept);
      for (double bound : {0.05, 0.1, 0.15, 0.2, 0.3}) {
        const LearnedThreshold t = LearnThreshold(observed, bound);
        const float at = t.min_confidence.value_or(min_confidence);
        const Point p = Score(
            pairs, outcomes, c, [&](const auto& cs) { return MostConfident(cs, threshold, at); }, train);
        // "learned" above 1: no threshold keeps the bound, so no semantic hit is served.
        std::printf(
            "{\"set\":\"%s\",\"feedback\":{\"scoring\":\"%s\",\"observations\":%zu,\"max_error_rate\":%.2f,"
            "\"learned\":%.4f,\"support\":%zu,\"error_bound\":%.3f,\"heldout_hits\":%zu,"
            "\"heldout_precision\":%.3f,\"heldout_recall\":%.3f}}\n",
            set.c_str(), strict ? "strict" : "label", observed.size(), bound, at, t.support, t.error_bound, p.hits,
            strict ? p.precision : p.label_precision, strict ? p.recall : p.label_recall);
      }
      // The same through the cache itself (a namespace of its own, so the two scorings'
      // feedback stay apart): the threshold it learns is the one above.
      VerifyPolicy bounded;
      bounded.max_error_rate = 0.2f;
      const std::string taught = set + (strict ? "-strict" : "-label");
      (void)c.cache->Configure(taught, {.embedder = embedder, .threshold = threshold, .verify = bounded.ToJson()});
      for (const auto& w : writes) (void)c.cache->ApplyFeedback(taught, w);
      auto state = c.cache->FeedbackState(taught);
      std::printf(
          "{\"set\":\"%s\",\"feedback_applied\":{\"scoring\":\"%s\",\"max_error_rate\":0.2,"
          "\"observations\":%zu,\"min_confidence\":%.4f}}\n",
          set.c_str(), strict ? "strict" : "label", state.ok() ? state->observations : 0,
          state.ok() ? state->min_confidence : -1.0f);
    }

    // Adversarial: at the operating point, the pairs that hit, perturbed.
    VerifyPolicy serving;
    serving.min_confidence = min_confidence;
    (void)c.cache->Configure(set, {.threshold = threshold, .verify = serving.ToJson()});
    size_t hit_before = 0, hit_cosine = 0, still_hit_of_cosine = 0;
    std::map<std::string, std::tuple<size_t, size_t, size_t>> changed;  // how -> (tried, missed, served original)
    for (size_t i = 0; i < pairs.size(); ++i) {
      const bool cosine_hit = Nearest(outcomes[i].candidates, threshold) >= 0;
      const bool verified_hit = MostConfident(outcomes[i].candidates, threshold, min_confidence) >= 0;
      hit_cosine += cosine_hit;
      still_hit_of_cosine += cosine_hit && verified_hit;
      if (!verified_hit) continue;
      ++hit_before;
      for (const char* how : {"number", "name", "negation", "direction"}) {
        const std::string p = Perturb(pairs[i].second, how);
        if (p.empty() || p == pairs[i].second) continue;
        auto r = c.cache->Lookup(set, {.prompt = p});
        auto& [tried, missed, served_original] = changed[how];
        ++tried;
        missed += r.ok() && !r->hit;
        // The wrong hit users report: the unchanged entry served for the changed prompt (a
        // hit on another entry may be right: "2016" changed to "2023" can find a 2023 question).
        const int k = MostConfident(outcomes[i].candidates, threshold, min_confidence);
        const bool original = r.ok() && r->hit && r->id == outcomes[i].candidates[k].id;
        served_original += original;
        if (original && std::getenv("CONTEXTD_VERIFY_EXAMPLES") != nullptr && served_original <= 5)
          std::fprintf(stderr, "%s: %s\n  served for: %s\n", how, p.c_str(), pairs[i].second.c_str());
      }
    }
    std::printf(
        "{\"set\":\"%s\",\"adversarial\":{\"threshold\":%.2f,\"min_confidence\":%.2f,\"pairs_hit\":%zu,"
        "\"cosine_hits_still_hit\":%.3f",
        set.c_str(), threshold, min_confidence, hit_before,
        hit_cosine ? static_cast<double>(still_hit_of_cosine) / hit_cosine : 0.0);
    size_t all_tried = 0, all_missed = 0, all_original = 0;
    const auto share = [](size_t n, size_t of) { return of ? static_cast<double>(n) / of : 0.0; };
    for (const auto& [how, tm] : changed) {
      const auto [tried, missed, original] = tm;
      std::printf(",\"%s\":{\"changed\":%zu,\"missed\":%.4f,\"served_original\":%.4f}", how.c_str(), tried,
                  share(missed, tried), share(original, tried));
      all_tried += tried, all_missed += missed, all_original += original;
    }
    std::printf(",\"all\":{\"changed\":%zu,\"missed\":%.4f,\"served_original\":%.4f}}}\n", all_tried,
                share(all_missed, all_tried), share(all_original, all_tried));
    std::fflush(stdout);
  }
  std::filesystem::remove_all(work);
  return 0;
}

}  // namespace
}  // namespace contextd

int main(int argc, char** argv) { return contextd::Main(argc, argv); }
