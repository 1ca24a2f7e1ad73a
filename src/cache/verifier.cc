#include "cache/verifier.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "common/hash.h"
#include "text/analyzer.h"

namespace contextd {
namespace {

// The model's weights: fitted by logistic regression (bench/fit_verifier.py) on the
// candidates cache_verify_bench saw for the first 20,000 pairs of
// ../shared/data/qqp/pairs.dev.tsv and the first half of ../shared/data/mrpc/pairs.dev.tsv
// (lookups of verbatim-stored text left out: those are exact hits); BENCHMARKS.md (issue
// 22) reports the held-out rest.
struct Weights {
  float bias, similarity, lexical, content;
  std::array<float, kSignalCount> mismatch;  // numbers, negation, antonyms, names, direction, question, detail
};
constexpr Weights kWeights = {-3.08f, 0.31f, 1.76f, 1.74f, {-0.43f, -0.31f, -0.23f, -1.38f, -0.04f, -0.11f, -1.65f}};
// Detail vetoes (when its policy says veto) past this share of unshared content words.
constexpr float kDetailVeto = 0.5f;

const std::unordered_map<std::string, int>& SpelledNumbers() {
  static const auto* m = new std::unordered_map<std::string, int>{
      {"zero", 0},      {"one", 1},         {"two", 2},           {"three", 3},
      {"four", 4},      {"five", 5},        {"six", 6},           {"seven", 7},
      {"eight", 8},     {"nine", 9},        {"ten", 10},          {"eleven", 11},
      {"twelve", 12},   {"thirteen", 13},   {"fourteen", 14},     {"fifteen", 15},
      {"sixteen", 16},  {"seventeen", 17},  {"eighteen", 18},     {"nineteen", 19},
      {"twenty", 20},   {"thirty", 30},     {"forty", 40},        {"fifty", 50},
      {"sixty", 60},    {"seventy", 70},    {"eighty", 80},       {"ninety", 90},
      {"hundred", 100}, {"thousand", 1000}, {"million", 1000000}, {"billion", 1000000000},
      {"dozen", 12},    {"half", -2},       {"twice", -3},        {"double", -3},
      {"triple", -4}};
  return *m;
}

const std::unordered_map<std::string, int>& Ordinals() {
  static const auto* m = new std::unordered_map<std::string, int>{
      {"first", 1},   {"second", 2}, {"third", 3}, {"fourth", 4}, {"fifth", 5}, {"sixth", 6},
      {"seventh", 7}, {"eighth", 8}, {"ninth", 9}, {"tenth", 10}, {"last", -1}};
  return *m;
}

const std::unordered_map<std::string, int>& Months() {
  static const auto* m = new std::unordered_map<std::string, int>{
      {"january", 1}, {"february", 2}, {"march", 3},     {"april", 4},    {"may", 5},       {"june", 6},
      {"july", 7},    {"august", 8},   {"september", 9}, {"october", 10}, {"november", 11}, {"december", 12},
      {"jan", 1},     {"feb", 2},      {"mar", 3},       {"apr", 4},      {"jun", 6},       {"jul", 7},
      {"aug", 8},     {"sep", 9},      {"sept", 9},      {"oct", 10},     {"nov", 11},      {"dec", 12}};
  return *m;
}

const std::unordered_set<std::string>& Units() {
  static const auto* s = new std::unordered_set<std::string>{
      "%",    "percent", "km",      "kms",     "kilometers", "kilometres", "m",      "meters",  "metres", "cm",
      "mm",   "mile",    "miles",   "ft",      "feet",       "foot",       "inch",   "inches",  "kg",     "kgs",
      "g",    "grams",   "lb",      "lbs",     "pounds",     "oz",         "l",      "liters",  "litres", "ml",
      "gb",   "mb",      "kb",      "tb",      "ghz",        "mhz",        "hz",     "w",       "kw",     "v",
      "usd",  "eur",     "dollars", "dollar",  "euros",      "euro",       "rupees", "rs",      "inr",    "yen",
      "year", "years",   "month",   "months",  "week",       "weeks",      "day",    "days",    "hour",   "hours",
      "hr",   "hrs",     "minute",  "minutes", "min",        "mins",       "second", "seconds", "sec",    "secs",
      "am",   "pm",      "degrees", "c",       "f",          "k",          "x",      "times",   "people", "bit",
      "bits", "bytes",   "pixels",  "mp",      "st",         "nd",         "rd",     "th"};
  return *s;
}

const std::unordered_set<std::string>& NegationCues() {
  static const auto* s = new std::unordered_set<std::string>{
      "not",     "no",       "never",   "none",   "nobody", "nothing", "neither", "nor",   "without", "cannot",
      "nowhere", "cant",     "dont",    "doesnt", "didnt",  "isnt",    "arent",   "wasnt", "werent",  "wont",
      "wouldnt", "shouldnt", "couldnt", "hasnt",  "havent", "hadnt",   "aint",    "non",   "un-",     "unable"};
  return *s;
}

// Opposite pairs, each side with its common inflections. A word on one side and its
// opposite on the other is a contradiction whatever the embeddings say.
const std::unordered_map<std::string, std::string>& PolarWords() {
  static const auto* m = [] {
    const std::vector<std::pair<std::vector<std::string>, std::vector<std::string>>> pairs = {
        {{"on"}, {"off"}},
        {{"up"}, {"down"}},
        {{"increase", "increases", "increased", "increasing", "raise", "raises", "raised"},
         {"decrease", "decreases", "decreased", "decreasing", "reduce", "reduces", "reduced", "lower", "lowers"}},
        {{"enable", "enables", "enabled", "enabling", "activate", "activated"},
         {"disable", "disables", "disabled", "disabling", "deactivate", "deactivated"}},
        {{"open", "opens", "opened", "opening"}, {"close", "closes", "closed", "closing", "shut"}},
        {{"start", "starts", "started", "starting", "begin", "begins"},
         {"stop", "stops", "stopped", "stopping", "end", "ends", "finish"}},
        {{"before"}, {"after"}},
        {{"more"}, {"less", "fewer"}},
        {{"most"}, {"least"}},
        {{"max", "maximum", "maximize"}, {"min", "minimum", "minimize"}},
        {{"buy", "buying", "bought", "purchase"}, {"sell", "selling", "sold"}},
        {{"true"}, {"false"}},
        {{"win", "wins", "won", "winning"}, {"lose", "loses", "lost", "losing"}},
        {{"add", "adds", "added", "adding"}, {"remove", "removes", "removed", "removing", "delete", "deleted"}},
        {{"positive"}, {"negative"}},
        {{"high", "higher", "highest"}, {"low", "lowest"}},
        {{"best"}, {"worst"}},
        {{"better"}, {"worse"}},
        {{"hot", "hotter", "warm"}, {"cold", "colder", "cool"}},
        {{"good"}, {"bad"}},
        {{"fast", "faster", "fastest", "quick", "quickly"}, {"slow", "slower", "slowest", "slowly"}},
        {{"rich", "richer"}, {"poor", "poorer"}},
        {{"import", "imports"}, {"export", "exports"}},
        {{"upload", "uploads", "uploading"}, {"download", "downloads", "downloading"}},
        {{"encrypt", "encrypted", "encryption"}, {"decrypt", "decrypted", "decryption"}},
        {{"push"}, {"pull"}},
        {{"allow", "allows", "allowed"}, {"deny", "denies", "denied", "block", "blocked"}},
        {{"accept", "accepted"}, {"reject", "rejected"}},
        {{"love", "loves"}, {"hate", "hates"}},
        {{"male", "men", "man", "boy", "boys", "husband"}, {"female", "women", "woman", "girl", "girls", "wife"}},
        {{"old", "older", "oldest"}, {"young", "younger", "youngest", "new", "newer", "newest"}},
        {{"early", "earlier"}, {"late", "later"}},
        {{"cheap", "cheaper", "cheapest"}, {"expensive", "costly"}},
        {{"light", "lighter"}, {"dark", "darker", "heavy", "heavier"}},
        {{"left"}, {"right"}},
        {{"north", "northern"}, {"south", "southern"}},
        {{"east", "eastern"}, {"west", "western"}},
        {{"inside", "internal", "indoor"}, {"outside", "external", "outdoor"}},
        {{"above"}, {"below"}},
        {{"input"}, {"output"}},
        {{"show", "shows", "unhide"}, {"hide", "hides"}},
        {{"lock", "locked"}, {"unlock", "unlocked"}},
        {{"connect", "connected"}, {"disconnect", "disconnected"}},
        {{"install", "installed", "installing"}, {"uninstall", "uninstalled", "uninstalling"}},
        {{"include", "includes", "including"}, {"exclude", "excludes", "excluding"}},
        {{"legal"}, {"illegal"}},
        {{"possible"}, {"impossible"}},
        {{"same", "similar"}, {"different"}},
        {{"like", "likes"}, {"dislike", "dislikes"}},
        {{"safe"}, {"dangerous", "unsafe"}},
        {{"healthy"}, {"unhealthy"}},
        {{"happy"}, {"sad", "unhappy"}},
        {{"success", "successful"}, {"failure", "failed", "fail"}},
        {{"pros", "advantages", "benefits"}, {"cons", "disadvantages", "drawbacks"}},
        {{"always"}, {"sometimes", "rarely"}},
        {{"big", "bigger", "biggest", "large", "larger", "largest"}, {"small", "smaller", "smallest", "tiny"}},
        {{"long", "longer", "longest"}, {"short", "shorter", "shortest"}},
        {{"strong", "stronger"}, {"weak", "weaker"}},
        {{"easy", "easier", "easiest"}, {"hard", "harder", "hardest", "difficult"}},
        {{"day"}, {"night"}},
        {{"summer"}, {"winter"}},
        {{"plus", "add"}, {"minus", "subtract"}},
        {{"multiply"}, {"divide"}},
    };
    auto* out = new std::unordered_map<std::string, std::string>();
    for (size_t i = 0; i < pairs.size(); ++i) {
      for (const auto& w : pairs[i].first) out->emplace(w, std::to_string(i) + ":a");
      for (const auto& w : pairs[i].second) out->emplace(w, std::to_string(i) + ":b");
    }
    return out;
  }();
  return *m;
}

const std::unordered_set<std::string>& SmallWords() {
  static const auto* s = new std::unordered_set<std::string>{
      "a",    "an",    "the",  "i",     "me",     "my",    "you",  "your",  "we",   "our",   "it",    "its",
      "is",   "are",   "was",  "were",  "be",     "been",  "do",   "does",  "did",  "to",    "of",    "in",
      "for",  "on",    "at",   "by",    "with",   "and",   "or",   "how",   "what", "which", "who",   "why",
      "when", "where", "can",  "could", "should", "would", "will", "there", "this", "that",  "these", "those",
      "from", "into",  "than", "as",    "if",     "so",    "get",  "some",  "any",  "much",  "many",  "very"};
  return *s;
}

struct Token {
  std::string text;   // as written, punctuation around it trimmed
  std::string lower;  // folded, apostrophes dropped
  bool sentence_start = false;
};

bool IsWordChar(unsigned char c) { return std::isalnum(c) || c >= 0x80; }

std::vector<Token> Tokenize(std::string_view s) {
  std::vector<Token> out;
  bool start = true;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    size_t j = i;
    while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j]))) ++j;
    std::string_view raw = s.substr(i, j - i);
    i = j;
    // Trim punctuation around the word, remembering a sentence end.
    bool ends_sentence = false;
    while (!raw.empty() && !IsWordChar(raw.back()) && raw.back() != '%' && raw.back() != '+' && raw.back() != '#') {
      ends_sentence |= raw.back() == '.' || raw.back() == '?' || raw.back() == '!';
      raw.remove_suffix(1);
    }
    while (!raw.empty() && !IsWordChar(raw.front()) && raw.front() != '$' && raw.front() != '.') raw.remove_prefix(1);
    if (!raw.empty()) {
      Token t;
      t.text = std::string(raw);
      for (char c : raw) {
        if (c == '\'') continue;
        t.lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
      }
      if (t.lower.size() > 2 && t.lower.ends_with("s") && t.text.size() >= 2 &&
          (t.text.ends_with("'s") || t.text.ends_with("’s"))) {
        t.lower.pop_back();  // a possessive: "Google's" is Google
      }
      t.sentence_start = start;
      out.push_back(std::move(t));
    }
    start = ends_sentence;
  }
  return out;
}

// "1,000" -> "1000", "2.50" -> "2.5", "$5" -> "5usd"; false when not a number.
bool NormaliseNumber(const std::string& word, std::string* out) {
  std::string w = word, unit;
  if (!w.empty() && (w[0] == '$')) {
    unit = "usd";
    w.erase(0, 1);
  }
  size_t k = 0;
  std::string digits;
  bool dot = false;
  while (k < w.size() && (std::isdigit(static_cast<unsigned char>(w[k])) || w[k] == ',' || (w[k] == '.' && !dot))) {
    if (w[k] == '.') {
      if (k + 1 >= w.size() || !std::isdigit(static_cast<unsigned char>(w[k + 1]))) break;
      dot = true;
    }
    if (w[k] != ',') digits.push_back(w[k]);
    ++k;
  }
  if (digits.empty() || !std::isdigit(static_cast<unsigned char>(digits[0]))) return false;
  if (dot) {
    while (digits.back() == '0') digits.pop_back();
    if (digits.back() == '.') digits.pop_back();
  }
  const std::string rest = w.substr(k);
  if (!rest.empty()) {
    std::string r;
    for (char c : rest) r.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    // "5km" and "1st" keep their unit; "3d" or "mp3" style words are identifiers, not numbers.
    if (!Units().count(r)) return false;
    unit = r == "st" || r == "nd" || r == "rd" || r == "th" ? "ord" : r;
  }
  *out = unit == "ord" ? "ord:" + digits : digits + unit;
  return true;
}

const Analyzer& English() {
  static const auto* a = MakeAnalyzer("english").value().release();
  return *a;
}

template <typename T>
void SortUnique(std::vector<T>* v) {
  std::sort(v->begin(), v->end());
  v->erase(std::unique(v->begin(), v->end()), v->end());
}

bool IsIdentifier(const std::string& w) {
  bool lower = false, upper_after_lower = false, alpha = false, digit = false, inner = false;
  for (size_t i = 0; i < w.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(w[i]);
    if (std::islower(c)) lower = true;
    if (std::isupper(c) && lower) upper_after_lower = true;
    alpha |= std::isalpha(c) != 0;
    digit |= std::isdigit(c) != 0;
    if (i > 0 && i + 1 < w.size() && (c == '_' || c == '.' || c == '/' || c == '\\' || c == ':' || c == '#'))
      inner = true;
  }
  return upper_after_lower || (alpha && digit) || (alpha && inner) || w.find("++") != std::string::npos;
}

template <typename T>
size_t IntersectionSize(const std::vector<T>& a, const std::vector<T>& b) {
  size_t n = 0;
  for (size_t i = 0, j = 0; i < a.size() && j < b.size();) {
    if (a[i] < b[j]) {
      ++i;
    } else if (b[j] < a[i]) {
      ++j;
    } else {
      ++n, ++i, ++j;
    }
  }
  return n;
}

template <typename T>
float Jaccard(const std::vector<T>& a, const std::vector<T>& b) {
  if (a.empty() && b.empty()) return 1.0f;
  const size_t inter = IntersectionSize(a, b);
  return static_cast<float>(inter) / static_cast<float>(a.size() + b.size() - inter);
}

template <typename T>
std::vector<T> Minus(const std::vector<T>& a, const std::vector<T>& b) {
  std::vector<T> out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

Json List(const std::vector<std::string>& v) {
  Json j = Json::MakeArray();
  for (const auto& s : v) j.push_back(s);
  return j;
}

}  // namespace

PromptFacts AnalyzePrompt(std::string_view text) {
  PromptFacts f;
  const std::vector<Token> tokens = Tokenize(text);
  std::unordered_set<std::string> words;
  for (const Token& t : tokens) words.insert(t.lower);
  const auto& spelled = SpelledNumbers();
  for (size_t i = 0; i < tokens.size(); ++i) {
    const Token& t = tokens[i];
    std::string number;
    bool number_word = false;  // a spelled number, ordinal or month: not a name
    if (NormaliseNumber(t.text, &number)) {
      // A unit in the next word belongs to the number: "5 km" is "5km".
      if (i + 1 < tokens.size() && Units().count(tokens[i + 1].lower) && number.back() >= '0' && number.back() <= '9')
        number += tokens[i + 1].lower == "percent" ? "%" : tokens[i + 1].lower;
      f.numbers.push_back(number);
    } else if (auto it = spelled.find(t.lower); it != spelled.end()) {
      // "twenty five" is 25, "two hundred" 200: a run of spelled numbers is one number.
      int64_t total = 0, current = 0;
      size_t j = i;
      for (; j < tokens.size(); ++j) {
        auto w = spelled.find(tokens[j].lower);
        if (w == spelled.end()) break;
        if (w->second < 0) {
          current = w->second;  // half, twice: markers of their own
          ++j;
          break;
        }
        if (w->second >= 100) {
          current = std::max<int64_t>(current, 1) * w->second;
          if (w->second >= 1000) total += current, current = 0;
        } else {
          current += w->second;
        }
      }
      total += current;
      f.numbers.push_back(total < 0 ? "x" + std::to_string(-total) : std::to_string(total));
      i = j - 1;
      number_word = true;
    } else if (auto o = Ordinals().find(t.lower); o != Ordinals().end()) {
      f.numbers.push_back("ord:" + std::to_string(o->second));
      number_word = true;
    } else if (auto m = Months().find(t.lower); m != Months().end() &&
                                                (t.lower.size() > 3 || t.text[0] != std::tolower(t.text[0])) &&
                                                !(t.lower == "may" && t.text[0] == 'm')) {
      f.numbers.push_back("month:" + std::to_string(m->second));
      number_word = true;
    } else if (std::any_of(t.text.begin(), t.text.end(),
                           [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
      // Digits inside a word: an expression ("2+2") is kept whole, and every digit run
      // counts ("iPhone7", "mp3", "3x4").
      const bool expression = t.text.find_first_of("+*/=^") != std::string::npos;
      if (expression) f.numbers.push_back("expr:" + t.lower);
      for (size_t k = 0; k < t.text.size();) {
        if (!std::isdigit(static_cast<unsigned char>(t.text[k]))) {
          ++k;
          continue;
        }
        size_t e = k;
        while (e < t.text.size() && std::isdigit(static_cast<unsigned char>(t.text[e]))) ++e;
        f.numbers.push_back(t.text.substr(k, e - k));
        k = e;
      }
      number_word = expression;
    }
    if (NegationCues().count(t.lower) ||
        (t.lower.size() > 3 && t.lower.ends_with("nt") && t.text.find('\'') != std::string::npos))
      ++f.negations;
    if (auto p = PolarWords().find(t.lower); p != PolarWords().end()) f.polar.push_back(p->second);
    // Names: capitalised inside a sentence, acronyms, identifiers. Numbers are not names.
    const bool capitalised = std::isupper(static_cast<unsigned char>(t.text[0])) != 0;
    const bool acronym =
        t.text.size() >= 2 &&
        std::all_of(t.text.begin(), t.text.end(),
                    [](char c) {
                      return std::isupper(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c));
                    }) &&
        std::isupper(static_cast<unsigned char>(t.text[0]));
    if (number.empty() && !number_word && t.lower != "i" &&
        ((capitalised && !t.sentence_start && !SmallWords().count(t.lower)) || acronym || IsIdentifier(t.text))) {
      f.names.push_back(t.lower);
    }
  }
  // Directions: "from A to B", "A to B", "A than B" (A, B content words).
  const auto content_at = [&](size_t k, int step) -> std::string {
    for (; k < tokens.size(); k += static_cast<size_t>(step)) {
      const std::string& w = tokens[k].lower;
      if (!SmallWords().count(w) && w != "more" && w != "less") return w;
      if (step < 0 && k == 0) break;
    }
    return "";
  };
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string& w = tokens[i].lower;
    if ((w == "to" || w == "into" || w == "vs" || w == "versus") && i > 0 && i + 1 < tokens.size()) {
      const std::string& before = tokens[i - 1].lower;
      const std::string after = content_at(i + 1, 1);
      if (!SmallWords().count(before) && !after.empty()) f.directions.emplace_back(before, after);
    } else if (w == "than" && i >= 2) {
      const std::string a = content_at(i - 2, -1), b = content_at(i + 1, 1);
      if (!a.empty() && !b.empty()) f.directions.emplace_back(a, b);
    } else if (w == "from" && i + 1 < tokens.size()) {
      for (size_t k = i + 1; k + 1 < tokens.size() && k < i + 6; ++k) {
        if (tokens[k].lower == "to" || tokens[k].lower == "into") {
          const std::string a = content_at(i + 1, 1), b = content_at(k + 1, 1);
          if (!a.empty() && !b.empty() && a != b) f.directions.emplace_back(a, b);
          break;
        }
      }
    }
  }
  // The question asked: the first wh-word decides.
  for (size_t i = 0; i < tokens.size() && f.question.empty(); ++i) {
    const std::string& w = tokens[i].lower;
    const std::string next = i + 1 < tokens.size() ? tokens[i + 1].lower : "";
    if (w == "who" || w == "whom" || w == "whose") f.question = "who";
    if (w == "when" || ((w == "what" || w == "which") && (next == "time" || next == "year" || next == "date")))
      f.question = "when";
    if (w == "where") f.question = "where";
    if (w == "why") f.question = "why";
    if (w == "how" && (next == "many" || next == "much")) f.question = "quantity";
    if (w == "how" && (next == "long" || next == "often")) f.question = "duration";
    if (w == "what" || w == "which" || w == "how") break;  // an open question: no type
  }
  // Content words and character trigrams.
  English().Analyze(text, &f.content);
  SortUnique(&f.content);
  std::string folded = " ";
  for (char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || u >= 0x80) {
      folded.push_back(static_cast<char>(std::tolower(u)));
    } else if (folded.back() != ' ') {
      folded.push_back(' ');
    }
  }
  if (folded.back() != ' ') folded.push_back(' ');
  for (size_t i = 0; i + 3 <= folded.size(); ++i) f.trigrams.push_back(Hash64(std::string_view(folded).substr(i, 3)));
  SortUnique(&f.trigrams);
  SortUnique(&f.numbers);
  SortUnique(&f.polar);
  SortUnique(&f.names);
  SortUnique(&f.directions);
  return f;
}

std::string_view SignalName(Signal s) {
  static constexpr std::string_view kNames[] = {"numbers",   "negation", "antonyms", "names",
                                                "direction", "question", "detail"};
  return kNames[static_cast<size_t>(s)];
}

Json VerifyPolicy::ToJson() const {
  Json j = Json::MakeObject();
  j["enabled"] = enabled;
  j["min_confidence"] = min_confidence;
  j["max_error_rate"] = max_error_rate > 0 ? Json(max_error_rate) : Json();
  for (size_t i = 0; i < kSignalCount; ++i) {
    j[std::string(SignalName(static_cast<Signal>(i)))] = signals[i] == SignalPolicy::kVeto      ? "veto"
                                                         : signals[i] == SignalPolicy::kPenalty ? "penalty"
                                                                                                : "off";
  }
  return j;
}

StatusOr<VerifyPolicy> VerifyPolicy::FromJson(const Json& j, const VerifyPolicy& base) {
  if (!j.is_object()) return InvalidArgument("'verify' must be an object", "invalid_type");
  VerifyPolicy p = base;
  for (const auto& [k, v] : j.as_object()) {
    if (k == "enabled") {
      if (!v.is_bool()) return InvalidArgument("'verify.enabled' must be true or false", "invalid_type");
      p.enabled = v.as_bool();
      continue;
    }
    if (k == "min_confidence") {
      if (!v.is_number() || v.as_double() < 0 || v.as_double() > 1)
        return InvalidArgument("'verify.min_confidence' must be a number from 0 to 1", "out_of_range");
      p.min_confidence = static_cast<float>(v.as_double());
      continue;
    }
    if (k == "max_error_rate") {
      if (v.is_null()) {
        p.max_error_rate = 0;
        continue;
      }
      if (!v.is_number() || !(v.as_double() > 0) || v.as_double() >= 1)
        return InvalidArgument("'verify.max_error_rate' must be a number above 0 and below 1, or null", "out_of_range");
      p.max_error_rate = static_cast<float>(v.as_double());
      continue;
    }
    size_t i = 0;
    while (i < kSignalCount && SignalName(static_cast<Signal>(i)) != k) ++i;
    if (i == kSignalCount) {
      return InvalidArgument(
          "unknown field 'verify." + k +
              "'; expected enabled, min_confidence, max_error_rate, numbers, negation, antonyms, names, "
              "direction, question, detail",
          "unknown_field");
    }
    const std::string s = v.is_string() ? v.as_string() : "";
    if (s != "veto" && s != "penalty" && s != "off")
      return InvalidArgument("'verify." + k + "' must be \"veto\", \"penalty\" or \"off\"", "invalid_value");
    p.signals[i] = s == "veto" ? SignalPolicy::kVeto : s == "penalty" ? SignalPolicy::kPenalty : SignalPolicy::kOff;
  }
  return p;
}

VerifyFeatures CompareFacts(const PromptFacts& q, const PromptFacts& c, float similarity) {
  VerifyFeatures x;
  x.similarity = similarity;
  x.lexical = Jaccard(q.trigrams, c.trigrams);
  x.content = Jaccard(q.content, c.content);
  const size_t shared = IntersectionSize(q.content, c.content);
  const size_t larger = std::max(q.content.size(), c.content.size());
  x.extra = larger == 0 ? 0.0f : 1.0f - static_cast<float>(shared) / static_cast<float>(larger);
  auto& m = x.mismatch;
  // Numbers and names conflict (1) when each prompt has one the other lacks: a value or a
  // name was changed. One that only one prompt has (0.5) is a detail added or dropped,
  // which paraphrases do all the time ("Mr Smith said" / "he said"); only the fitted
  // weight counts it, never a veto.
  // A value or name the lookup asks about and the cached prompt never mentions is a
  // conflict too: the cached answer was not about it ("... in 2023?" against a prompt with
  // no year).
  const auto conflict = [](size_t only_query, size_t only_cached) {
    return only_query > 0 ? 1.0f : only_cached > 0 ? 0.5f : 0.0f;
  };
  m[static_cast<size_t>(Signal::kNumbers)] =
      conflict(Minus(q.numbers, c.numbers).size(), Minus(c.numbers, q.numbers).size());
  m[static_cast<size_t>(Signal::kNegation)] = (q.negations % 2) != (c.negations % 2) ? 1.0f : 0.0f;
  // Opposite sides of one pair: "3:a" in one, "3:b" (and not "3:a") in the other.
  float polar = 0;
  for (const auto& p : q.polar) {
    std::string other = p;
    other.back() = p.back() == 'a' ? 'b' : 'a';
    if (std::binary_search(c.polar.begin(), c.polar.end(), other) &&
        !std::binary_search(c.polar.begin(), c.polar.end(), p))
      polar = 1;
  }
  m[static_cast<size_t>(Signal::kAntonyms)] = polar;
  // A name counts as shared when the other prompt has the word at all (people do not
  // capitalise consistently); it differs when one names what the other never mentions.
  const auto names_missing = [](const PromptFacts& a, const PromptFacts& b) {
    size_t n = 0;
    for (const auto& name : a.names) {
      if (std::binary_search(b.names.begin(), b.names.end(), name)) continue;
      // b may hold the word uncapitalised: look for its stem among b's content words.
      std::vector<std::string> stem;
      English().Analyze(name, &stem);
      if (!stem.empty() && std::binary_search(b.content.begin(), b.content.end(), stem[0])) continue;
      ++n;
    }
    return n;
  };
  m[static_cast<size_t>(Signal::kNames)] = conflict(names_missing(q, c), names_missing(c, q));
  float swapped = 0;
  for (const auto& [a, b] : q.directions) {
    if (a == b) continue;
    for (const auto& [x2, y2] : c.directions) {
      if (x2 == b && y2 == a) swapped = 1;
    }
  }
  m[static_cast<size_t>(Signal::kDirection)] = swapped;
  m[static_cast<size_t>(Signal::kQuestion)] =
      !q.question.empty() && !c.question.empty() && q.question != c.question ? 1.0f : 0.0f;
  m[static_cast<size_t>(Signal::kDetail)] = x.extra;
  return x;
}

Verification Verify(const PromptFacts& q, const PromptFacts& c, float similarity, const VerifyPolicy& policy) {
  const VerifyFeatures x = CompareFacts(q, c, similarity);
  Verification v;
  float z =
      kWeights.bias + kWeights.similarity * x.similarity + kWeights.lexical * x.lexical + kWeights.content * x.content;
  for (size_t i = 0; i < kSignalCount; ++i) {
    const Signal s = static_cast<Signal>(i);
    const float m = x.mismatch[i];
    if (m == 0 || policy[s] == SignalPolicy::kOff) continue;
    const bool veto = policy[s] == SignalPolicy::kVeto && (s == Signal::kDetail ? m > kDetailVeto : m >= 1.0f);
    if (veto && v.vetoed_by.empty()) v.vetoed_by = std::string(SignalName(s));
    z += kWeights.mismatch[i] * m;
  }
  v.confidence = v.vetoed_by.empty() ? 1.0f / (1.0f + std::exp(-z)) : 0.0f;
  v.passed = v.vetoed_by.empty() && v.confidence >= policy.min_confidence;
  // Evidence: what differs in the signal that vetoed, else in the first that disagreed.
  std::string which = v.vetoed_by;
  for (size_t i = 0; i < kSignalCount && which.empty(); ++i) {
    if (x.mismatch[i] > 0 && policy.signals[i] != SignalPolicy::kOff)
      which = std::string(SignalName(static_cast<Signal>(i)));
  }
  if (!which.empty()) {
    v.evidence = Json::MakeObject();
    v.evidence["signal"] = which;
    std::vector<std::string> a, b;
    if (which == "numbers") {
      a = Minus(q.numbers, c.numbers), b = Minus(c.numbers, q.numbers);
    } else if (which == "negation") {
      a = {std::to_string(q.negations) + " negations"}, b = {std::to_string(c.negations) + " negations"};
    } else if (which == "antonyms") {
      a = Minus(q.polar, c.polar), b = Minus(c.polar, q.polar);
    } else if (which == "names") {
      a = Minus(q.names, c.names), b = Minus(c.names, q.names);
    } else if (which == "direction") {
      for (const auto& [x1, y1] : q.directions) a.push_back(x1 + " > " + y1);
      for (const auto& [x1, y1] : c.directions) b.push_back(x1 + " > " + y1);
    } else if (which == "question") {
      a = {q.question}, b = {c.question};
    } else {
      a = Minus(q.content, c.content), b = Minus(c.content, q.content);
    }
    v.evidence["query"] = List(a);
    v.evidence["cached"] = List(b);
  }
  return v;
}

Json Verification::ToJson() const {
  Json j = Json::MakeObject();
  j["confidence"] = confidence;
  j["passed"] = passed;
  if (!vetoed_by.empty()) j["vetoed_by"] = vetoed_by;
  if (!evidence.is_null()) j["evidence"] = evidence;
  return j;
}

}  // namespace contextd
