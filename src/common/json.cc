#include "common/json.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include <simdjson.h>

namespace contextd {

Json::Type Json::type() const {
  switch (v_.index()) {
    case 0:
      return Type::kNull;
    case 1:
      return Type::kBool;
    case 2:
    case 3:
      return Type::kNumber;
    case 4:
      return Type::kString;
    case 5:
      return Type::kArray;
    default:
      return Type::kObject;
  }
}

const Json* Json::Find(std::string_view key) const {
  if (!is_object()) return nullptr;
  for (const auto& [k, v] : std::get<Object>(v_)) {
    if (k == key) return &v;
  }
  return nullptr;
}

Json& Json::operator[](std::string_view key) {
  if (is_null()) v_ = Object{};
  auto& obj = std::get<Object>(v_);
  for (auto& [k, v] : obj) {
    if (k == key) return v;
  }
  obj.emplace_back(std::string(key), Json());
  return obj.back().second;
}

void Json::push_back(Json v) {
  if (is_null()) v_ = Array{};
  std::get<Array>(v_).push_back(std::move(v));
}

bool WholeInt64(double d, int64_t* out) {
  // [-2^63, 2^63): both bounds are exact doubles, and every whole double inside converts.
  if (std::trunc(d) != d || d < -9223372036854775808.0 || d >= 9223372036854775808.0) return false;
  *out = static_cast<int64_t>(d);
  return true;
}

bool Json::operator==(const Json& other) const {
  if (is_number() && other.is_number()) {
    if (is_int() && other.is_int()) return as_int() == other.as_int();
    if (!is_int() && !other.is_int()) return as_double() == other.as_double();
    // An integer meets a double exactly: converting the integer to a double would make
    // 2^53 + 1 equal to 2^53.0 and equality intransitive (PayloadIndex keys on it).
    int64_t whole = 0;
    return WholeInt64(is_int() ? other.as_double() : as_double(), &whole) &&
           whole == (is_int() ? as_int() : other.as_int());
  }
  if (v_.index() != other.v_.index()) return false;
  if (is_object()) {
    const auto& a = as_object();
    const auto& b = other.as_object();
    if (a.size() != b.size()) return false;
    for (const auto& [k, v] : a) {
      const Json* o = other.Find(k);
      if (o == nullptr || !(*o == v)) return false;
    }
    return true;
  }
  return v_ == other.v_;
}

namespace {

// True when any of the 8 bytes in `w` needs escaping: below 0x20, '"' or '\\'. Bit tricks
// from "Bit Twiddling Hacks" (haszero / hasless), eight bytes per step.
inline bool NeedsEscape8(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL, kHigh = 0x8080808080808080ULL;
  auto has_zero = [&](uint64_t v) { return (v - kOnes) & ~v & kHigh; };
  uint64_t below_space = (w - kOnes * 0x20) & ~w & kHigh;
  return below_space | has_zero(w ^ (kOnes * '"')) | has_zero(w ^ (kOnes * '\\'));
}

}  // namespace

void AppendJsonString(std::string_view s, std::string* out) {
  static const char kHex[] = "0123456789abcdef";
  out->reserve(out->size() + s.size() + 2);
  out->push_back('"');
  size_t run = 0;  // start of the pending run of characters that need no escaping
  size_t i = 0;
  while (i < s.size()) {
    if (i + 8 <= s.size()) {
      uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      if (!NeedsEscape8(w)) {
        i += 8;
        continue;
      }
    }
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') {
      ++i;
      continue;
    }
    out->append(s.data() + run, i - run);
    run = i + 1;
    ++i;
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      default:
        out->append("\\u00");
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 15]);
    }
  }
  out->append(s.data() + run, s.size() - run);
  out->push_back('"');
}

namespace {

// The shortest text that reads back as `v` (float or double), "null" when not finite.
template <class T>
void AppendShortest(T v, std::string* out) {
  if (!std::isfinite(v)) {
    out->append("null");
    return;
  }
  // Negative zero is written "0": "-0" would read back as the integer 0 and dump as "0",
  // so a document would not survive a second round trip unchanged (found by json_fuzz).
  if (v == 0) v = 0;
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, res.ptr);
}

}  // namespace

void AppendJsonNumber(double d, std::string* out) { AppendShortest(d, out); }
void AppendJsonNumber(float f, std::string* out) { AppendShortest(f, out); }

Json::Json(float f) : v_(static_cast<double>(f)) {
  if (!std::isfinite(f)) return;  // dumped as null, as a non-finite double is
  std::string text;
  AppendShortest(f, &text);
  double d = 0;
  std::from_chars(text.data(), text.data() + text.size(), d);
  v_ = d;
}

void Json::DumpTo(std::string* out) const {
  switch (v_.index()) {
    case 0:
      out->append("null");
      break;
    case 1:
      out->append(std::get<bool>(v_) ? "true" : "false");
      break;
    case 2:
      AppendJsonNumber(std::get<double>(v_), out);
      break;
    case 3: {
      char buf[24];
      auto res = std::to_chars(buf, buf + sizeof(buf), std::get<int64_t>(v_));
      out->append(buf, res.ptr);
      break;
    }
    case 4:
      AppendJsonString(std::get<std::string>(v_), out);
      break;
    case 5: {
      out->push_back('[');
      bool first = true;
      for (const auto& e : std::get<Array>(v_)) {
        if (!first) out->push_back(',');
        first = false;
        e.DumpTo(out);
      }
      out->push_back(']');
      break;
    }
    default: {
      out->push_back('{');
      bool first = true;
      for (const auto& [k, v] : std::get<Object>(v_)) {
        if (!first) out->push_back(',');
        first = false;
        AppendJsonString(k, out);
        out->push_back(':');
        v.DumpTo(out);
      }
      out->push_back('}');
    }
  }
}

std::string Json::Dump() const {
  std::string out;
  DumpTo(&out);
  return out;
}

std::string_view JsonTypeName(const Json& v) {
  switch (v.type()) {
    case Json::Type::kNull:
      return "null";
    case Json::Type::kBool:
      return "a boolean";
    case Json::Type::kNumber:
      return "a number";
    case Json::Type::kString:
      return "a string";
    case Json::Type::kArray:
      return "an array";
    case Json::Type::kObject:
      return "an object";
  }
  return "unknown";
}

namespace {

// Builds an object member by member; a later duplicate key replaces the earlier value, as
// in most JSON libraries. Past a few members duplicates are found through a hash of the
// keys, so a body of a million keys costs a million lookups, not 10^12 comparisons. The
// key views point into the parser's buffers, alive for the whole conversion.
class ObjectBuilder {
 public:
  void Add(std::string_view key, Json value) {
    const size_t at = Find(key);
    if (at != SIZE_MAX) {
      members_[at].second = std::move(value);
      return;
    }
    keys_.push_back(key);
    members_.emplace_back(std::string(key), std::move(value));
    if (keys_.size() == kLinear + 1) {
      for (size_t i = 0; i < keys_.size(); ++i) index_.emplace(keys_[i], i);
    } else if (keys_.size() > kLinear + 1) {
      index_.emplace(key, keys_.size() - 1);
    }
  }
  Json Finish() { return Json(std::move(members_)); }

 private:
  static constexpr size_t kLinear = 16;
  size_t Find(std::string_view key) const {
    if (keys_.size() <= kLinear) {
      for (size_t i = 0; i < keys_.size(); ++i)
        if (keys_[i] == key) return i;
      return SIZE_MAX;
    }
    auto it = index_.find(key);
    return it == index_.end() ? SIZE_MAX : it->second;
  }
  Json::Object members_;
  std::vector<std::string_view> keys_;
  std::unordered_map<std::string_view, size_t> index_;
};

Json Convert(simdjson::dom::element e) {
  switch (e.type()) {
    case simdjson::dom::element_type::ARRAY: {
      Json::Array arr;
      simdjson::dom::array a = e.get_array().value_unsafe();
      arr.reserve(a.size());
      for (auto child : a) arr.push_back(Convert(child));
      return Json(std::move(arr));
    }
    case simdjson::dom::element_type::OBJECT: {
      ObjectBuilder obj;
      simdjson::dom::object o = e.get_object().value_unsafe();  // not a temporary's member
      for (auto field : o) obj.Add(field.key, Convert(field.value));
      return obj.Finish();
    }
    case simdjson::dom::element_type::INT64:
      return Json(e.get_int64().value_unsafe());
    case simdjson::dom::element_type::UINT64: {
      uint64_t u = e.get_uint64().value_unsafe();
      return Json(static_cast<double>(u));
    }
    case simdjson::dom::element_type::DOUBLE:
      return Json(e.get_double().value_unsafe());
    case simdjson::dom::element_type::STRING:
      return Json(e.get_string().value_unsafe());
    case simdjson::dom::element_type::BOOL:
      return Json(e.get_bool().value_unsafe());
    case simdjson::dom::element_type::NULL_VALUE:
      return Json();
  }
  return Json();
}

// simdjson 3.0 fails a whole document on an integer beyond 64 bits (NUMBER_ERROR), yet
// such numbers are valid JSON, and JavaScript writes 1e20 as 100000000000000000000. Gives
// every integer literal outside strings a ".0", making it a double as most parsers read it.
std::string IntegersAsDoubles(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 16);
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    out.push_back(c);
    if (in_string) {
      if (c == '\\' && i + 1 < text.size()) out.push_back(text[++i]);
      if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      const size_t begin = i;
      bool integer = true;
      while (i + 1 < text.size() && std::strchr("0123456789+-.eE", text[i + 1]) != nullptr && text[i + 1] != '\0') {
        const char d = text[++i];
        integer &= d >= '0' && d <= '9';
        out.push_back(d);
      }
      // Only the integers simdjson cannot hold: the others stay exact.
      const char* first = text.data() + begin;
      const char* last = text.data() + i + 1;
      int64_t as_signed;
      uint64_t as_unsigned;
      const auto parsed =
          c == '-' ? std::from_chars(first, last, as_signed) : std::from_chars(first, last, as_unsigned);
      const bool fits = parsed.ec == std::errc() && parsed.ptr == last;
      if (integer && !fits) out.append(".0");
    }
  }
  return out;
}

}  // namespace

StatusOr<Json> ReadJsonFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  auto json = ParseJson(ss.str());
  if (!json.ok()) return InvalidArgument(path + ": " + json.status().message(), json.status().reason());
  return json;
}

namespace {

// A simdjson parser keeps buffers of about 15 bytes per byte of the largest document it
// has parsed, for the life of its thread. Documents up to this size reuse the thread's
// parser; larger ones get a parser of their own, freed on return, so one 16 MB body does
// not pin ~250 MB in each of the ~80 worker threads that may see one.
constexpr size_t kReusedParserMaxBytes = 64 << 10;

StatusOr<Json> ParseWith(simdjson::dom::parser& parser, std::string_view text) {
  simdjson::padded_string padded(text);
  simdjson::dom::element root;
  auto err = parser.parse(padded).get(root);
  if (err == simdjson::NUMBER_ERROR) {  // also what an integer past 64 bits gives
    simdjson::padded_string widened(IntegersAsDoubles(text));
    if (!parser.parse(widened).get(root)) return Convert(root);
  }
  if (err == simdjson::UTF8_ERROR) {
    return InvalidArgument("body contains invalid UTF-8", "invalid_utf8");
  }
  if (err) {
    return InvalidArgument(std::string("malformed JSON: ") + simdjson::error_message(err), "invalid_json");
  }
  return Convert(root);
}

// On-demand conversion: errors (simdjson's, any) make the caller fall back to the DOM
// parse, which reports them as ParseJson always has.
simdjson::error_code ConvertOnDemand(simdjson::ondemand::value v, Json* out);

simdjson::error_code ConvertOnDemandArray(simdjson::ondemand::array a, Json* out) {
  Json::Array arr;
  for (auto child : a) {
    simdjson::ondemand::value cv;
    if (auto err = child.get(cv)) return err;
    Json j;
    if (auto err = ConvertOnDemand(cv, &j)) return err;
    arr.push_back(std::move(j));
  }
  *out = Json(std::move(arr));
  return simdjson::SUCCESS;
}

simdjson::error_code ConvertOnDemandObject(simdjson::ondemand::object o, Json* out) {
  ObjectBuilder obj;
  for (auto field : o) {
    std::string_view key;
    if (auto err = field.unescaped_key().get(key)) return err;
    simdjson::ondemand::value fv;
    if (auto err = field.value().get(fv)) return err;
    Json j;
    if (auto err = ConvertOnDemand(fv, &j)) return err;
    obj.Add(key, std::move(j));
  }
  *out = obj.Finish();
  return simdjson::SUCCESS;
}

simdjson::error_code ConvertOnDemand(simdjson::ondemand::value v, Json* out) {
  simdjson::ondemand::json_type type;
  if (auto err = v.type().get(type)) return err;
  switch (type) {
    case simdjson::ondemand::json_type::array: {
      simdjson::ondemand::array a;
      if (auto err = v.get_array().get(a)) return err;
      return ConvertOnDemandArray(a, out);
    }
    case simdjson::ondemand::json_type::object: {
      simdjson::ondemand::object o;
      if (auto err = v.get_object().get(o)) return err;
      return ConvertOnDemandObject(o, out);
    }
    case simdjson::ondemand::json_type::number: {
      simdjson::ondemand::number_type nt;
      if (auto err = v.get_number_type().get(nt)) return err;
      if (nt == simdjson::ondemand::number_type::signed_integer) {
        int64_t i;
        if (auto err = v.get_int64().get(i)) return err;
        *out = Json(i);
      } else if (nt == simdjson::ondemand::number_type::unsigned_integer) {
        uint64_t u;
        if (auto err = v.get_uint64().get(u)) return err;
        *out = Json(static_cast<double>(u));  // as the DOM conversion does
      } else {
        double d;
        if (auto err = v.get_double().get(d)) return err;
        *out = Json(d);
      }
      return simdjson::SUCCESS;
    }
    case simdjson::ondemand::json_type::string: {
      std::string_view sv;
      if (auto err = v.get_string().get(sv)) return err;
      *out = Json(sv);
      return simdjson::SUCCESS;
    }
    case simdjson::ondemand::json_type::boolean: {
      bool b;
      if (auto err = v.get_bool().get(b)) return err;
      *out = Json(b);
      return simdjson::SUCCESS;
    }
    case simdjson::ondemand::json_type::null: {
      bool is_null = false;
      if (auto err = v.is_null().get(is_null)) return err;
      if (!is_null) return simdjson::INCORRECT_TYPE;
      *out = Json();
      return simdjson::SUCCESS;
    }
  }
  return simdjson::INCORRECT_TYPE;
}

StatusOr<Json> ParseWithNewParser(std::string_view text) {
  simdjson::dom::parser parser;
  return ParseWith(parser, text);
}

}  // namespace

StatusOr<Json> ParseJsonOnDemand(std::string_view text) {
  if (text.empty()) return InvalidArgument("request body is empty; expected JSON", "invalid_json");
  Json out;
  bool converted = false;
  {
    // Scoped: the parser's buffers and the padded copy go before a fallback parse starts.
    simdjson::ondemand::parser parser;
    simdjson::padded_string padded(text);
    simdjson::ondemand::document doc;
    simdjson::ondemand::json_type type;
    if (!parser.iterate(padded).get(doc) && !doc.type().get(type)) {
      simdjson::error_code err = simdjson::INCORRECT_TYPE;  // scalar documents: the DOM's
      if (type == simdjson::ondemand::json_type::array) {
        simdjson::ondemand::array a;
        err = doc.get_array().get(a);
        if (!err) err = ConvertOnDemandArray(a, &out);
      } else if (type == simdjson::ondemand::json_type::object) {
        simdjson::ondemand::object o;
        err = doc.get_object().get(o);
        if (!err) err = ConvertOnDemandObject(o, &out);
      }
      // Walked to the end, or trailing content (malformed): at the end, there is no
      // current location.
      converted = !err && doc.current_location().error() == simdjson::OUT_OF_BOUNDS;
    }
  }
  if (converted) return out;
  return ParseWithNewParser(text);
}

StatusOr<Json> ParseJson(std::string_view text) {
  if (text.empty()) return InvalidArgument("request body is empty; expected JSON", "invalid_json");
  if (text.size() > kOnDemandParseMinBytes) return ParseJsonOnDemand(text);
  if (text.size() > kReusedParserMaxBytes) return ParseWithNewParser(text);
  thread_local simdjson::dom::parser parser;
  return ParseWith(parser, text);
}

Status ReadWholeNumber(const Json& v, const std::string& what, int64_t min, int64_t max, int64_t* out) {
  // Compared as doubles first: converting 1e300 to an integer would be undefined.
  const double d = v.is_number() ? v.as_double() : std::nan("");
  if (!(d >= static_cast<double>(min) && d <= static_cast<double>(max) && d == std::floor(d))) {
    return InvalidArgument(what + " must be a whole number " +
                           (max == kMaxExactInteger ? ">= " + std::to_string(min)
                                                    : "from " + std::to_string(min) + " to " + std::to_string(max)) +
                           ", got " + v.Dump());
  }
  *out = v.is_int() ? v.as_int() : static_cast<int64_t>(d);
  return Status::Ok();
}

Status ReadNumberAtLeast(const Json& v, const std::string& what, int64_t min, int64_t* out) {
  return ReadWholeNumber(v, what, min, kMaxExactInteger, out);
}

}  // namespace contextd
