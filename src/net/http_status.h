// The one place where a Status becomes an HTTP status and an error body.
#pragma once

#include "common/status.h"
#include "net/http.h"

namespace contextd {

int HttpStatusFor(const Status& status);
// The error's machine-readable code: its reason, or the status code's name without one.
std::string ErrorCode(const Status& status);
// {"error":{"code":reason,"message":message}} with the matching HTTP status.
HttpResponse ErrorResponse(const Status& status);

}  // namespace contextd
