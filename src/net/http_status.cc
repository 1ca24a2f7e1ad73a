#include "net/http_status.h"

#include "common/error_catalogue.h"
#include "common/json.h"

namespace contextd {

int HttpStatusFor(const Status& status) {
  // The catalogue's status for the reason (common/error_catalogue.h); else the code's.
  if (const ErrorReason* r = FindErrorReason(status.reason()); r != nullptr && status.code() != StatusCode::kOk) {
    return r->http_status;
  }
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
