// Status and StatusOr: the one error model of contextd (Abseil/LevelDB style).
//
// Every fallible call on a request path returns a Status or a StatusOr<T>; nothing throws
// across a module boundary. The mapping from StatusCode to an HTTP status lives in exactly
// one place, src/server/http_status.cc.
//
// Thread safety: values; copy freely.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace contextd {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // the request is malformed or names impossible values
  kNotFound,            // a named collection or document does not exist
  kAlreadyExists,       // creating something that exists
  kFailedPrecondition,  // the request is well formed but conflicts with state
  kResourceExhausted,   // a limit (size, rate, queue) was hit
  kUnavailable,         // a dependency is down; retrying may help
  kDeadlineExceeded,
  kInternal,  // a bug or a storage failure; never the caller's fault
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message, std::string reason = "")
      : code_(code), message_(std::move(message)), reason_(std::move(reason)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // A short machine-readable reason ("invalid_json", "dimension_mismatch"); falls back to
  // the code's name when empty. Clients switch on it, so keep reasons stable.
  const std::string& reason() const { return reason_; }
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  std::string reason_;
};

std::string_view StatusCodeName(StatusCode code);

inline std::string Status::ToString() const {
  if (ok()) return "OK";
  return std::string(StatusCodeName(code_)) + ": " + message_;
}

inline Status InvalidArgument(std::string msg, std::string reason = "invalid_argument") {
  return Status(StatusCode::kInvalidArgument, std::move(msg), std::move(reason));
}
inline Status NotFound(std::string msg, std::string reason = "not_found") {
  return Status(StatusCode::kNotFound, std::move(msg), std::move(reason));
}
inline Status AlreadyExists(std::string msg, std::string reason = "already_exists") {
  return Status(StatusCode::kAlreadyExists, std::move(msg), std::move(reason));
}
inline Status FailedPrecondition(std::string msg, std::string reason = "failed_precondition") {
  return Status(StatusCode::kFailedPrecondition, std::move(msg), std::move(reason));
}
inline Status ResourceExhausted(std::string msg, std::string reason = "resource_exhausted") {
  return Status(StatusCode::kResourceExhausted, std::move(msg), std::move(reason));
}
inline Status Unavailable(std::string msg, std::string reason = "unavailable") {
  return Status(StatusCode::kUnavailable, std::move(msg), std::move(reason));
}
inline Status DeadlineExceeded(std::string msg, std::string reason = "deadline_exceeded") {
  return Status(StatusCode::kDeadlineExceeded, std::move(msg), std::move(reason));
}
inline Status Internal(std::string msg, std::string reason = "internal") {
  return Status(StatusCode::kInternal, std::move(msg), std::move(reason));
}

inline std::string_view StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "ok";
    case StatusCode::kInvalidArgument:
      return "invalid_argument";
    case StatusCode::kNotFound:
      return "not_found";
    case StatusCode::kAlreadyExists:
      return "already_exists";
    case StatusCode::kFailedPrecondition:
      return "failed_precondition";
    case StatusCode::kResourceExhausted:
      return "resource_exhausted";
    case StatusCode::kUnavailable:
      return "unavailable";
    case StatusCode::kDeadlineExceeded:
      return "deadline_exceeded";
    case StatusCode::kInternal:
      return "internal";
  }
  return "unknown";
}

// Holds either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(Status status) : v_(std::move(status)) {}  // NOLINT: implicit by design
  StatusOr(T value) : v_(std::move(value)) {}         // NOLINT: implicit by design

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  // REQUIRES: ok()
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<Status, T> v_;
};

}  // namespace contextd

#define CTX_RETURN_IF_ERROR(expr)    \
  do {                               \
    ::contextd::Status _st = (expr); \
    if (!_st.ok()) return _st;       \
  } while (0)

#define CTX_CONCAT_INNER(a, b) a##b
#define CTX_CONCAT(a, b) CTX_CONCAT_INNER(a, b)
#define CTX_ASSIGN_OR_RETURN(lhs, expr) CTX_ASSIGN_OR_RETURN_IMPL(CTX_CONCAT(_statusor_, __LINE__), lhs, expr)
#define CTX_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()
