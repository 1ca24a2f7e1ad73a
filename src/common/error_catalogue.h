// The catalogue of error reasons: every `reason` a Status may carry to a client, with the
// HTTP status it is answered with and what it means. The wire form is
// {"error":{"code":REASON,"message":...}}; clients branch on the code, people read the
// message. One mistake has one reason whichever endpoint sees it (an unknown member of a
// body is always unknown_field, a number out of its range always out_of_range).
//
// tests/common/error_catalogue_test.cc reads the sources and fails when a reason is used
// that is not here, or listed here and never used, or listed with an HTTP status that its
// Status code contradicts.
//
// Thread safety: constant data.
#pragma once

#include <span>
#include <string_view>

namespace contextd {

struct ErrorReason {
  std::string_view code;
  int http_status;
  std::string_view meaning;
};

std::span<const ErrorReason> ErrorCatalogue();
// The entry for `code`, or null.
const ErrorReason* FindErrorReason(std::string_view code);

}  // namespace contextd
