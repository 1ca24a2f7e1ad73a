// Request bodies sent compressed (the Content-Encoding header): gzip, deflate and zstd, as
// clients shipping large ingest batches over a network send them.
//
// Decoding stops at `max_bytes` of output: a compressed body may not expand past the limit
// an uncompressed one has, so a few kilobytes of "zip bomb" cannot take gigabytes.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace contextd {

// The decoded body. `encoding` is the header's value: empty or "identity" returns `body`
// as it is; "gzip", "x-gzip", "deflate" (zlib-wrapped or raw) and "zstd" are decoded; a
// list ("gzip, zstd") is decoded last-applied first. Errors: InvalidArgument
// "unsupported_encoding" (HTTP 415) for other encodings, "bad_encoding" for a body that is
// not what its header says, ResourceExhausted "body_too_large" (413) past `max_bytes`.
StatusOr<std::string> DecodeContentEncoding(std::string_view encoding, std::string body, size_t max_bytes);

// Compressed replies. The coding to answer a request's Accept-Encoding with: "zstd" when
// the client takes it (faster than gzip at a better ratio), else "gzip", else "" (a coding
// with q=0 is refused; "*" takes gzip).
std::string ChooseResponseEncoding(std::string_view accept_encoding);
// `body` in `coding` ("zstd" or "gzip"), at level 1: replies are compressed on the thread
// that serves the request, where speed matters more than the last percent of size.
std::string EncodeBody(std::string_view coding, std::string_view body);
// zlib's deflate at `level`; `window_bits` 15 + 16 writes gzip, 15 zlib ("deflate" as RFC
// 9110 means it), -15 raw deflate (as some clients send it).
std::string ZlibDeflate(std::string_view body, int window_bits, int level = 1);

}  // namespace contextd
