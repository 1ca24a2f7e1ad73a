#include "text/analyzer.h"

#include "common/memory.h"

#include <libstemmer.h>

#include <unordered_set>

#include "text/utf8.h"

namespace contextd {
namespace {

// Lucene's EnglishAnalyzer stopword set, extended with a few very common function words.
const std::unordered_set<std::string_view>& EnglishStopwords() {
  static const std::unordered_set<std::string_view> kWords = {
      "a",     "an",    "and",  "are",  "as",  "at",   "be",   "but",  "by",   "for", "if",    "in",   "into",
      "is",    "it",    "no",   "not",  "of",  "on",   "or",   "such", "that", "the", "their", "then", "there",
      "these", "they",  "this", "to",   "was", "will", "with", "were", "been", "has", "have",  "had",  "its",
      "from",  "which", "who",  "whom", "we",  "our",  "than", "can",  "may",  "do",  "does"};
  return kWords;
}

class WordAnalyzer final : public Analyzer {
 public:
  WordAnalyzer(std::string name, bool fold, bool stop, bool stem)
      : name_(std::move(name)), fold_(fold), stop_(stop), stem_(stem) {}

  std::string name() const override { return name_; }

  void Analyze(std::string_view text, std::vector<std::string>* terms) const override {
    thread_local std::vector<TokenSpan> spans;
    terms->clear();
    PreTokenize(text, &spans);
    for (const auto& s : spans) {
      if (!s.is_word) continue;
      std::string_view raw = text.substr(s.begin, s.end - s.begin);
      std::string word = fold_ ? FoldCase(raw) : std::string(raw);
      if (stop_ && EnglishStopwords().count(word)) continue;
      if (stem_) word = Stem(word);
      terms->push_back(std::move(word));
    }
    ShrinkScratch(&spans);
  }

 private:
  static std::string Stem(const std::string& word) {
    // libstemmer's stemmer objects are not thread-safe; one per thread.
    struct Holder {
      sb_stemmer* s = sb_stemmer_new("english", "UTF_8");
      ~Holder() { sb_stemmer_delete(s); }
    };
    thread_local Holder holder;
    if (holder.s == nullptr) return word;
    const sb_symbol* out =
        sb_stemmer_stem(holder.s, reinterpret_cast<const sb_symbol*>(word.data()), static_cast<int>(word.size()));
    if (out == nullptr) return word;
    return std::string(reinterpret_cast<const char*>(out), static_cast<size_t>(sb_stemmer_length(holder.s)));
  }

  std::string name_;
  bool fold_, stop_, stem_;
};

}  // namespace

StatusOr<std::unique_ptr<Analyzer>> MakeAnalyzer(std::string_view name) {
  if (name == "english") return std::unique_ptr<Analyzer>(new WordAnalyzer("english", true, true, true));
  if (name == "standard") return std::unique_ptr<Analyzer>(new WordAnalyzer("standard", true, false, false));
  if (name == "none") return std::unique_ptr<Analyzer>(new WordAnalyzer("none", false, false, false));
  return InvalidArgument("unknown analyzer '" + std::string(name) + "'; expected english, standard or none");
}

}  // namespace contextd
