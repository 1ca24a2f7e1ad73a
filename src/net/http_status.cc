#include "net/http_status.h"

#include "common/json.h"

namespace contextd {

int HttpStatusFor(const Status& status) {
  // A few reasons have a more precise HTTP status than their code.
  const std::string& r = status.reason();
  if (r == "body_too_large") return 413;
  if (r == "method_not_allowed") return 405;
  if (r == "unsupported_encoding") return 415;
  if (r == "uri_too_long") return 414;
  if (r == "header_too_large") return 431;
  if (r == "missing_api_key" || r == "invalid_api_key" || r == "expired_api_key") return 401;
  if (r == "permission_denied") return 403;
  if (r == "budget_exceeded") return 402;
  switch (status.code()) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kAlreadyExists:
      return 409;
    case StatusCode::kFailedPrecondition:
      return 409;
    case StatusCode::kResourceExhausted:
      return 429;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kDeadlineExceeded:
      return 504;
    case StatusCode::kInternal:
      return 500;
  }
  return 500;
}

std::string ErrorCode(const Status& status) {
  return status.reason().empty() ? std::string(StatusCodeName(status.code())) : status.reason();
}

HttpResponse ErrorResponse(const Status& status) {
  HttpResponse res;
  res.status = HttpStatusFor(status);
  res.body = "{\"error\":{\"code\":";
  AppendJsonString(ErrorCode(status), &res.body);
  res.body += ",\"message\":";
  AppendJsonString(status.message(), &res.body);
  res.body += "}}";
  if (res.status == 503 || res.status == 429) res.headers.emplace_back("Retry-After", "1");
  return res;
}

}  // namespace contextd
