// Feedback on semantic cache hits: what a namespace learns when it is told that an entry
// was right or wrong for a prompt (POST /v1/cache/{ns}/feedback).
//
// Each piece of feedback is an observation: the verifier's confidence for (prompt, entry)
// and whether serving the entry was right. Two things are learnt from them:
//   - the namespace's threshold: the lowest confidence at which the observed hits would
//     have been wrong at most `max_error_rate` of the time, with 95% confidence (Wilson's
//     upper bound on the error rate of the observations at or above it). Observations
//     below the current threshold come from misses the client checked itself (a fresh
//     response given for a candidate the lookup refused), so the threshold can fall as well
//     as rise. With enough feedback and no threshold meeting the bound, the namespace
//     serves no semantic hits at all: it asked for a bound it cannot have.
//   - each entry's own floor: an entry found wrong for a prompt is not served again at that
//     confidence or below.
// A fresh response instead of a verdict is compared with the cached one (ResponsesAgree).
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

#include "common/json.h"

namespace contextd {

struct FeedbackObservation {
  float confidence = 0;
  bool correct = false;
};

// Feedback kept per namespace (the most recent): a 95% bound needs a few hundred
// observations at the confidences that matter, and the confident ones are a small share
// of all (on QQP, 2,000 were too few to show any threshold within 20%). Eight bytes each
// in memory. The threshold needs at least kFeedbackMinSupport observations at or above it
// before it replaces the policy's.
inline constexpr size_t kFeedbackKept = 20000;
inline constexpr size_t kFeedbackMinSupport = 20;

struct LearnedThreshold {
  // The confidence a hit needs; nullopt: too little feedback (the policy's applies). Above
  // 1 when no threshold meets the bound.
  std::optional<float> min_confidence;
  size_t support = 0;      // observations at or above it
  double error_bound = 0;  // Wilson's 95% upper bound on their error rate
};

LearnedThreshold LearnThreshold(std::vector<FeedbackObservation> observations, double max_error_rate,
                                size_t min_support = kFeedbackMinSupport);

// Wilson score interval's upper end for `errors` of `n` (z = 1.96: 95%).
double WilsonUpper(size_t errors, size_t n, double z = 1.96);

// Whether a fresh response says what the cached one says: their texts (a string, or an
// OpenAI-style completion's first choice) are equal once case and spacing are folded, or
// agree on numbers, negation, opposites and names and share at least half their
// character trigrams.
bool ResponsesAgree(const Json& cached, const Json& fresh);

}  // namespace contextd
