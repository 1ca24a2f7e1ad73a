// Verifier: checks a semantic cache hit before it is served. Embedding similarity cannot
// tell "says the same" from "changes a number", "negates", "names someone else", "swaps
// the direction" or "adds a clause" (the wrong hits users report against GPTCache and its
// likes: "2+2" served for "2+3", "turn on" for "turn off"). The verifier compares what
// each prompt pins down, with no neural weights:
//   numbers    digits, spelled-out numbers, ordinals and month names, with units glued on
//   negation   negation cues (not, never, n't, without...), compared by parity
//   antonyms   one prompt says "on", "increase", "before"... where the other says the opposite
//   names      capitalised words inside a sentence, acronyms, identifiers (code, paths)
//   direction  "from A to B", "A to B", "A than B" met the other way round
//   question   who / when / where / why / how many / how long, when both ask a specific one
//   detail     content words one prompt has and the other lacks
// and a lexical similarity (character trigrams), and folds them with the embedding
// similarity into a confidence in [0, 1] by a logistic model fitted on labelled question
// pairs (see BENCHMARKS.md, issue 22). A policy says per signal whether a mismatch vetoes
// the hit, lowers the confidence (its fitted weight) or is ignored, and the confidence a
// hit needs.
//
// Thread safety: the functions are pure; Analyze() is safe for concurrent use.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace contextd {

// What one prompt pins down. Analysed once per stored prompt and once per lookup.
struct PromptFacts {
  std::vector<std::string> numbers;                             // normalised ("3", "2.5", "5km", "month:3"), sorted
  int negations = 0;                                            // negation cues
  std::vector<std::string> polar;                               // antonym-bearing words, as "pair:side", sorted
  std::vector<std::string> names;                               // lower-cased names and identifiers, sorted
  std::vector<std::pair<std::string, std::string>> directions;  // (A, B) of "A to B", "A than B"
  std::string question;                                         // who|when|where|why|quantity|duration, or "" (open)
  std::vector<std::string> content;                             // stemmed content words, sorted, unique
  std::vector<uint64_t> trigrams;                               // hashed character trigrams of the folded text, sorted
};

PromptFacts AnalyzePrompt(std::string_view text);

enum class Signal { kNumbers, kNegation, kAntonyms, kNames, kDirection, kQuestion, kDetail };
constexpr size_t kSignalCount = 7;
std::string_view SignalName(Signal s);

enum class SignalPolicy { kVeto, kPenalty, kOff };

struct VerifyPolicy {
  std::array<SignalPolicy, kSignalCount> signals = {SignalPolicy::kVeto,   SignalPolicy::kVeto, SignalPolicy::kVeto,
                                                    SignalPolicy::kVeto,   SignalPolicy::kVeto, SignalPolicy::kPenalty,
                                                    SignalPolicy::kPenalty};
  // A hit needs at least this. The fitted confidence is a probability among every candidate
  // over the cosine threshold, most of them wrong, so it runs low: 0.3 is the operating
  // point BENCHMARKS.md (issue 22) reports.
  float min_confidence = 0.3f;
  // With feedback (POST /v1/cache/{ns}/feedback): the error rate the namespace accepts
  // among the hits it serves; once feedback has taught a threshold that keeps to it, that
  // threshold replaces min_confidence (cache/feedback.h). 0: off.
  float max_error_rate = 0;
  bool enabled = true;  // false: the embedding threshold alone decides (as before)

  SignalPolicy& operator[](Signal s) { return signals[static_cast<size_t>(s)]; }
  SignalPolicy operator[](Signal s) const { return signals[static_cast<size_t>(s)]; }
  Json ToJson() const;
  // {"min_confidence":0.6,"max_error_rate":0.05,"numbers":"veto","names":"penalty",...,"enabled":true}; absent
  // members keep `base`'s. InvalidArgument naming the bad member.
  static StatusOr<VerifyPolicy> FromJson(const Json& j, const VerifyPolicy& base);
};

// The features the model weighs, for a query and a cached prompt (exposed for the benchmark
// that fits the weights).
struct VerifyFeatures {
  float similarity = 0;                        // the embedding cosine
  float lexical = 0;                           // trigram Jaccard
  float content = 0;                           // content-word Jaccard
  float extra = 0;                             // content words only one side has, relative to the larger side
  std::array<float, kSignalCount> mismatch{};  // 1 where the signal disagrees (detail: count)
};
VerifyFeatures CompareFacts(const PromptFacts& query, const PromptFacts& cached, float similarity);

struct Verification {
  float confidence = 0;
  bool passed = false;
  std::string vetoed_by;  // a signal's name, or empty
  Json evidence;          // {"query":[...],"cached":[...]} of the signal that vetoed (or weighed most)
  Json ToJson() const;
};

Verification Verify(const PromptFacts& query, const PromptFacts& cached, float similarity, const VerifyPolicy& policy);

}  // namespace contextd
