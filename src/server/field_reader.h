// FieldReader: reads the members of one JSON object of a request body, for every handler,
// so the same mistake gets the same reason and message in every endpoint:
//
//   invalid_type   "'PATH' must be EXPECTED, got TYPE"
//   unknown_field  "unknown field 'NAME' in WHERE; expected A, B, C"
//   missing_field  "missing field 'PATH'"
//   out_of_range   "'PATH' must be a whole number from LO to HI, got V" (and for numbers)
//   invalid_value  "'PATH' must be one of \"a\", \"b\""
//
// PATH is the member's place in the body ("chunking.max_tokens", "documents[3].id"), so
// a client sees where the mistake is. Readers leave *out unchanged when the member is
// absent (the caller's default stands); a present member of the wrong type or out of
// range is an error, never silently defaulted.
//
// Thread safety: a value over a Json it does not own; the Json must outlive it.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>

#include "common/json.h"
#include "common/status.h"

namespace contextd {

class FieldReader {
 public:
  // A reader over `obj` at `where` ("" for the body itself). invalid_type unless `obj` is
  // an object; `null_is_empty` reads null (an empty body) as {}.
  static StatusOr<FieldReader> Open(const Json& obj, std::string where, bool null_is_empty = false);

  // unknown_field for any member not in `names` (listed in the message).
  Status Known(std::initializer_list<const char*> names) const;

  const Json* Find(const char* name) const { return obj_->Find(name); }
  bool Has(const char* name) const { return obj_->Find(name) != nullptr; }
  // The member's path for messages: "where.name", or "name" at the top.
  std::string Path(const std::string& name) const;
  const std::string& where() const { return where_; }

  // missing_field unless present.
  Status Require(const char* name) const;
  Status String(const char* name, std::string* out) const;
  Status Bool(const char* name, bool* out) const;
  // A whole number in [lo, hi].
  Status Int(const char* name, int64_t lo, int64_t hi, int64_t* out) const;
  Status Int(const char* name, int lo, int hi, int* out) const;
  Status Size(const char* name, size_t lo, size_t hi, size_t* out) const;
  // A number in [lo, hi] (out_of_range names the bounds).
  Status Number(const char* name, double lo, double hi, float* out) const;
  Status Number(const char* name, double lo, double hi, std::optional<float>* out) const;
  // A string that is one of `values`: invalid_value otherwise.
  Status OneOf(const char* name, std::initializer_list<const char*> values, std::string* out) const;
  // The member as a nested reader; nullopt when absent, invalid_type when not an object.
  StatusOr<std::optional<FieldReader>> Object(const char* name) const;

  // The shared messages, for checks a reader method does not cover.
  static Status WrongType(const std::string& path, const char* expected, const Json& got);
  static Status OutOfRange(const std::string& path, double lo, double hi, const Json& got);

 private:
  FieldReader(const Json* obj, std::string where) : obj_(obj), where_(std::move(where)) {}
  const Json* obj_;
  std::string where_;
};

}  // namespace contextd
