#include "server/field_reader.h"

#include <cmath>
#include <sstream>

namespace contextd {
namespace {

// 0.5, 10, 1e-06: numbers in messages as people write them.
std::string ShortNumber(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

const Json& EmptyObject() {
  static const Json* empty = new Json(Json::MakeObject());
  return *empty;
}

}  // namespace

StatusOr<FieldReader> FieldReader::Open(const Json& obj, std::string where, bool null_is_empty) {
  if (null_is_empty && obj.is_null()) return FieldReader(&EmptyObject(), std::move(where));
  if (!obj.is_object() && where.empty()) {
    return InvalidArgument("the request body must be a JSON object, got " + std::string(JsonTypeName(obj)),
                           "invalid_type");
  }
  if (!obj.is_object()) return WrongType(where, "an object", obj);
  return FieldReader(&obj, std::move(where));
}

std::string FieldReader::Path(const std::string& name) const { return where_.empty() ? name : where_ + "." + name; }

Status FieldReader::WrongType(const std::string& path, const char* expected, const Json& got) {
  return InvalidArgument("'" + path + "' must be " + expected + ", got " + std::string(JsonTypeName(got)),
                         "invalid_type");
}

Status FieldReader::OutOfRange(const std::string& path, double lo, double hi, const Json& got) {
  return InvalidArgument(
      "'" + path + "' must be a number from " + ShortNumber(lo) + " to " + ShortNumber(hi) + ", got " + got.Dump(),
      "out_of_range");
}

Status FieldReader::Known(std::initializer_list<const char*> names) const {
  for (const auto& [k, v] : obj_->as_object()) {
    bool ok = false;
    for (const char* name : names) ok |= k == name;
    if (ok) continue;
    std::string expected;
    for (const char* name : names) expected += (expected.empty() ? "" : ", ") + std::string(name);
    return InvalidArgument(
        "unknown field '" + k + "' in " + (where_.empty() ? "the request" : where_) + "; expected " + expected,
        "unknown_field");
  }
  return Status::Ok();
}

Status FieldReader::Require(const char* name) const {
  if (Has(name)) return Status::Ok();
  return InvalidArgument("missing field '" + Path(name) + "'", "missing_field");
}

Status FieldReader::String(const char* name, std::string* out) const {
  const Json* v = Find(name);
  if (v == nullptr) return Status::Ok();
  if (!v->is_string()) return WrongType(Path(name), "a string", *v);
  *out = v->as_string();
  return Status::Ok();
}

Status FieldReader::Bool(const char* name, bool* out) const {
  const Json* v = Find(name);
  if (v == nullptr) return Status::Ok();
  if (!v->is_bool()) return WrongType(Path(name), "true or false", *v);
  *out = v->as_bool();
  return Status::Ok();
}

Status FieldReader::Int(const char* name, int64_t lo, int64_t hi, int64_t* out) const {
  const Json* v = Find(name);
  if (v == nullptr) return Status::Ok();
  if (!v->is_number()) return WrongType(Path(name), "an integer", *v);
  // Compared as doubles first: converting 1e300 to an integer would be undefined.
  const double d = v->as_double();
  if (d != std::floor(d)) return WrongType(Path(name), "an integer", *v);
  if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi))) {
    return InvalidArgument("'" + Path(name) + "' must be a whole number from " + std::to_string(lo) + " to " +
                               std::to_string(hi) + ", got " + v->Dump(),
                           "out_of_range");
  }
  *out = v->is_int() ? v->as_int() : static_cast<int64_t>(d);
  return Status::Ok();
}

Status FieldReader::Int(const char* name, int lo, int hi, int* out) const {
  int64_t v = *out;
  CTX_RETURN_IF_ERROR(Int(name, int64_t{lo}, int64_t{hi}, &v));
  *out = static_cast<int>(v);
  return Status::Ok();
}

Status FieldReader::Size(const char* name, size_t lo, size_t hi, size_t* out) const {
  int64_t v = static_cast<int64_t>(*out);
  CTX_RETURN_IF_ERROR(Int(name, static_cast<int64_t>(lo), static_cast<int64_t>(hi), &v));
  *out = static_cast<size_t>(v);
  return Status::Ok();
}

Status FieldReader::Number(const char* name, double lo, double hi, float* out) const {
  const Json* v = Find(name);
  if (v == nullptr) return Status::Ok();
  if (!v->is_number()) return WrongType(Path(name), "a number", *v);
  // Checked as the float it is kept as, so 1e-300 is not accepted as a positive 0.
  const float f = static_cast<float>(v->as_double());
  if (!(f >= lo && f <= hi)) return OutOfRange(Path(name), lo, hi, *v);
  *out = f;
  return Status::Ok();
}

Status FieldReader::Number(const char* name, double lo, double hi, std::optional<float>* out) const {
  if (!Has(name)) return Status::Ok();
  float f = 0;
  CTX_RETURN_IF_ERROR(Number(name, lo, hi, &f));
  *out = f;
  return Status::Ok();
}

Status FieldReader::OneOf(const char* name, std::initializer_list<const char*> values, std::string* out) const {
  const Json* v = Find(name);
  if (v == nullptr) return Status::Ok();
  for (const char* value : values) {
    if (v->is_string() && v->as_string() == value) {
      *out = value;
      return Status::Ok();
    }
  }
  // The list is spelled out only for the message: query bodies pass here on every request.
  std::string expected;
  for (const char* value : values) expected += (expected.empty() ? "\"" : ", \"") + std::string(value) + "\"";
  return InvalidArgument("'" + Path(name) + "' must be one of " + expected + ", got " + v->Dump(), "invalid_value");
}

StatusOr<std::optional<FieldReader>> FieldReader::Object(const char* name) const {
  const Json* v = Find(name);
  if (v == nullptr) return std::optional<FieldReader>();
  if (!v->is_object()) return WrongType(Path(name), "an object", *v);
  return std::optional<FieldReader>(FieldReader(v, Path(name)));
}

}  // namespace contextd
