#include "cache/feedback.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <string>

#include "cache/verifier.h"

namespace contextd {
namespace {

// The text of a response: a string, or the first choice of an OpenAI-style completion
// (message.content or text), or a "content"/"text"/"output" member; else its JSON.
std::string ResponseText(const Json& r) {
  if (r.is_string()) return r.as_string();
  if (r.is_object()) {
    if (const Json* choices = r.Find("choices");
        choices != nullptr && choices->is_array() && !choices->as_array().empty()) {
      const Json& first = choices->as_array()[0];
      if (const Json* message = first.Find("message"); message != nullptr) {
        if (const Json* content = message->Find("content"); content != nullptr && content->is_string())
          return content->as_string();
      }
      if (const Json* text = first.Find("text"); text != nullptr && text->is_string()) return text->as_string();
    }
    for (const char* name : {"content", "text", "output"}) {
      if (const Json* v = r.Find(name); v != nullptr && v->is_string()) return v->as_string();
    }
  }
  return r.Dump();
}

std::string Folded(const std::string& s) {
  std::string out;
  bool space = false;
  for (unsigned char c : s) {
    if (std::isspace(c)) {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(static_cast<char>(std::tolower(c)));
  }
  return out;
}

}  // namespace

double WilsonUpper(size_t errors, size_t n, double z) {
  if (n == 0) return 1.0;
  const double p = static_cast<double>(errors) / static_cast<double>(n), nn = static_cast<double>(n);
  const double centre = p + z * z / (2 * nn);
  const double spread = z * std::sqrt(p * (1 - p) / nn + z * z / (4 * nn * nn));
  return std::min(1.0, (centre + spread) / (1 + z * z / nn));
}

LearnedThreshold LearnThreshold(std::vector<FeedbackObservation> observations, double max_error_rate,
                                size_t min_support) {
  LearnedThreshold out;
  if (observations.size() < min_support) return out;
  std::sort(observations.begin(), observations.end(),
            [](const FeedbackObservation& a, const FeedbackObservation& b) { return a.confidence > b.confidence; });
  // Walk down from the most confident; every distinct confidence is a possible threshold
  // and the observations at or above it are what it would have served. The lowest that
  // meets the bound wins (the most hits for the error the namespace accepts).
  size_t errors = 0;
  for (size_t i = 0; i < observations.size(); ++i) {
    errors += observations[i].correct ? 0 : 1;
    const bool boundary = i + 1 == observations.size() || observations[i + 1].confidence < observations[i].confidence;
    if (!boundary || i + 1 < min_support) continue;
    const double bound = WilsonUpper(errors, i + 1);
    if (bound <= max_error_rate) {
      out.min_confidence = observations[i].confidence;
      out.support = i + 1;
      out.error_bound = bound;
    }
  }
  if (!out.min_confidence) {
    // Enough feedback, and no threshold keeps the errors within the bound.
    out.min_confidence = std::nextafter(1.0f, 2.0f);
    out.error_bound = WilsonUpper(errors, observations.size());
  }
  return out;
}

bool ResponsesAgree(const Json& cached, const Json& fresh) {
  const std::string a = ResponseText(cached), b = ResponseText(fresh);
  if (Folded(a) == Folded(b)) return true;
  const VerifyFeatures f = CompareFacts(AnalyzePrompt(a), AnalyzePrompt(b), 1.0f);
  for (Signal s : {Signal::kNumbers, Signal::kNegation, Signal::kAntonyms, Signal::kNames}) {
    if (f.mismatch[static_cast<size_t>(s)] > 0) return false;
  }
  return f.lexical >= 0.5f;
}

}  // namespace contextd
