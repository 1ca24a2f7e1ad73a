// Json: a small owned JSON value (null, bool, number, string, array, object) with a
// simdjson-backed parser and a compact serializer.
//
// Objects keep insertion order and look keys up linearly: request bodies and document
// metadata are small, and order-preserving output is friendlier to read. Numbers remember
// whether they were written as integers so ids and counts round-trip exactly.
//
// Thread safety: a Json is a value; concurrent const access is safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/status.h"

namespace contextd {

class Json {
 public:
  using Array = std::vector<Json>;
  using Member = std::pair<std::string, Json>;
  using Object = std::vector<Member>;
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };

  Json() : v_(std::monostate{}) {}
  Json(std::nullptr_t) : v_(std::monostate{}) {}     // NOLINT
  Json(bool b) : v_(b) {}                            // NOLINT
  Json(int i) : v_(static_cast<int64_t>(i)) {}       // NOLINT
  Json(int64_t i) : v_(i) {}                         // NOLINT
  Json(uint64_t i) : v_(static_cast<int64_t>(i)) {}  // NOLINT
  Json(double d) : v_(d) {}                          // NOLINT
  // A float is kept as the double nearest its shortest decimal form, so 0.9f prints as 0.9
  // rather than 0.8999999761581421: the digits a float holds, as TEI and OpenAI print them.
  Json(float f);                                    // NOLINT
  Json(const char* s) : v_(std::string(s)) {}       // NOLINT
  Json(std::string s) : v_(std::move(s)) {}         // NOLINT
  Json(std::string_view s) : v_(std::string(s)) {}  // NOLINT
  Json(Array a) : v_(std::move(a)) {}               // NOLINT
  Json(Object o) : v_(std::move(o)) {}              // NOLINT

  static Json MakeObject() { return Json(Object{}); }
  static Json MakeArray() { return Json(Array{}); }

  Type type() const;
  bool is_null() const { return v_.index() == 0; }
  bool is_bool() const { return v_.index() == 1; }
  bool is_number() const { return v_.index() == 2 || v_.index() == 3; }
  bool is_int() const { return v_.index() == 3; }
  bool is_string() const { return v_.index() == 4; }
  bool is_array() const { return v_.index() == 5; }
  bool is_object() const { return v_.index() == 6; }

  // REQUIRES: the matching is_*() holds.
  bool as_bool() const { return std::get<bool>(v_); }
  double as_double() const { return is_int() ? static_cast<double>(std::get<int64_t>(v_)) : std::get<double>(v_); }
  int64_t as_int() const { return is_int() ? std::get<int64_t>(v_) : static_cast<int64_t>(std::get<double>(v_)); }
  const std::string& as_string() const { return std::get<std::string>(v_); }
  const Array& as_array() const { return std::get<Array>(v_); }
  Array& as_array() { return std::get<Array>(v_); }
  const Object& as_object() const { return std::get<Object>(v_); }
  Object& as_object() { return std::get<Object>(v_); }

  // Object lookup; nullptr when this is not an object or has no such key.
  const Json* Find(std::string_view key) const;
  // Object building: returns the member, inserting null when absent.
  // REQUIRES: is_object() (a null value becomes an empty object first).
  Json& operator[](std::string_view key);
  // Array building. REQUIRES: is_array() (a null value becomes an empty array first).
  void push_back(Json v);

  bool operator==(const Json& other) const;

  // Compact serialization. Non-finite numbers are written as null (JSON has no NaN).
  std::string Dump() const;
  void DumpTo(std::string* out) const;

 private:
  std::variant<std::monostate, bool, double, int64_t, std::string, Array, Object> v_;
};

// Parses one JSON document. Errors are InvalidArgument with reason "invalid_json", or
// "invalid_utf8" when a string is not valid UTF-8.
StatusOr<Json> ParseJson(std::string_view text);
// Bodies larger than this are parsed by ParseJsonOnDemand.
inline constexpr size_t kOnDemandParseMinBytes = 1 << 20;
// ParseJson's path for large bodies: the same result, built while simdjson's on-demand
// parser walks the text, with about half the scratch memory of its DOM parser (which keeps
// ~14 bytes per input byte: 219 MB for a 16 MB body, the write path's peak). Anything the
// walk does not accept (a malformed body, an integer past 64 bits, a scalar document) is
// handed to the DOM parse, so results and error messages are exactly ParseJson's.
// Exposed so tests can run both paths on any input.
StatusOr<Json> ParseJsonOnDemand(std::string_view text);

// Reads and parses a JSON file. NotFound "cannot read PATH" when it cannot be read;
// InvalidArgument "PATH: <parse error>" when it is not JSON.
StatusOr<Json> ReadJsonFile(const std::string& path);

// Appends `s` to `out` as a quoted JSON string.
void AppendJsonString(std::string_view s, std::string* out);
// Appends a number in its shortest round-tripping form; for a float, the shortest that
// reads back as the same float (about half the characters of the double form).
void AppendJsonNumber(double d, std::string* out);
void AppendJsonNumber(float f, std::string* out);

inline constexpr int64_t kMaxExactInteger = int64_t{1} << 53;
// Whether `d` is a whole number in int64's range, and then which (*out): the integer a
// double equals exactly, as Json::operator== compares them.
bool WholeInt64(double d, int64_t* out);
// The longest time-to-live any setting accepts: ten years. Larger values overflowed the
// millisecond arithmetic of expiry times (a ttl_s of 1e18 expired at once).
inline constexpr int64_t kMaxTtlSeconds = int64_t{10} * 365 * 24 * 3600;

// Reads a config setting that must be a whole number in [min, max]; InvalidArgument
// "<what> must be a whole number from <min> to <max>, got <v>" otherwise.
Status ReadWholeNumber(const Json& v, const std::string& what, int64_t min, int64_t max, int64_t* out);
// The same up to 2^53, past which a JSON number (a double) no longer holds every integer.
Status ReadNumberAtLeast(const Json& v, const std::string& what, int64_t min, int64_t* out);

// Human-readable name of a type for error messages ("a string", "an object").
std::string_view JsonTypeName(const Json& v);

}  // namespace contextd
