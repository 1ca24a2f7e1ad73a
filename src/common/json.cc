#include "common/json.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

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

bool Json::operator==(const Json& other) const {
  if (is_number() && other.is_number()) {
    if (is_int() && other.is_int()) return as_int() == other.as_int();
    return as_double() == other.as_double();
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
      Json::Object obj;
      simdjson::dom::object o = e.get_object().value_unsafe();
      obj.reserve(o.size());
      for (auto field : o) {
        // Later duplicates win, as in most JSON libraries.
        bool replaced = false;
        for (auto& m : obj) {
          if (m.first == field.key) {
            m.second = Convert(field.value);
            replaced = true;
            break;
          }
        }
        if (!replaced) obj.emplace_back(std::string(field.key), Convert(field.value));
      }
      return Json(std::move(obj));
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

}  // namespace

StatusOr<Json> ParseJson(std::string_view text) {
  if (text.empty()) return InvalidArgument("request body is empty; expected JSON", "invalid_json");
  if (text.size() > kReusedParserMaxBytes) {
    simdjson::dom::parser parser;
    return ParseWith(parser, text);
  }
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
