#include "net/content_encoding.h"

#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <vector>

namespace contextd {
namespace {

Status TooLarge(size_t max_bytes) {
  return ResourceExhausted("request body exceeds the limit of " + std::to_string(max_bytes) + " bytes once decoded",
                           "body_too_large");
}

Status Bad(std::string_view encoding, std::string_view why) {
  return InvalidArgument("the body is not valid " + std::string(encoding) + ": " + std::string(why), "bad_encoding");
}

// zlib's inflate; `window_bits` 15 + 32 detects a gzip or zlib header, -15 reads raw deflate.
StatusOr<std::string> Inflate(std::string_view encoding, const std::string& in, size_t max_bytes, int window_bits) {
  z_stream z{};
  if (inflateInit2(&z, window_bits) != Z_OK) return Internal("inflateInit2 failed");
  std::unique_ptr<z_stream, int (*)(z_stream*)> done(&z, inflateEnd);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  std::string out;
  char buf[64 * 1024];
  while (true) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof(buf);
    const int rc = inflate(&z, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
      return Bad(encoding, z.msg != nullptr ? z.msg : "corrupt");
    out.append(buf, sizeof(buf) - z.avail_out);
    if (out.size() > max_bytes) return TooLarge(max_bytes);
    if (rc == Z_STREAM_END) return out;
    // Input used up with room left for output: the stream stops before its end.
    if (z.avail_in == 0 && z.avail_out != 0) return Bad(encoding, "truncated");
  }
}

StatusOr<std::string> Unzstd(const std::string& in, size_t max_bytes) {
  std::unique_ptr<ZSTD_DStream, size_t (*)(ZSTD_DStream*)> z(ZSTD_createDStream(), ZSTD_freeDStream);
  if (z == nullptr) return Internal("ZSTD_createDStream failed");
  ZSTD_inBuffer input{in.data(), in.size(), 0};
  std::string out;
  std::vector<char> buf(ZSTD_DStreamOutSize());
  while (true) {
    ZSTD_outBuffer output{buf.data(), buf.size(), 0};
    const size_t rc = ZSTD_decompressStream(z.get(), &output, &input);
    if (ZSTD_isError(rc)) return Bad("zstd", ZSTD_getErrorName(rc));
    out.append(buf.data(), output.pos);
    if (out.size() > max_bytes) return TooLarge(max_bytes);
    if (input.pos < input.size) continue;
    if (rc == 0) return out;  // every frame complete
    // The frame wants more: either output still to flush (the buffer filled) or input the
    // body does not have.
    if (output.pos < output.size) return Bad("zstd", "truncated");
  }
}

// Header values compare without case or surrounding space.
std::string TrimLower(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The items of a comma-separated header ("gzip, zstd;q=0.5"), trimmed and lower-cased,
// empty ones left out.
std::vector<std::string> HeaderItems(std::string_view value) {
  std::vector<std::string> items;
  for (size_t start = 0; start <= value.size();) {
    const size_t comma = std::min(value.find(',', start), value.size());
    std::string item = TrimLower(value.substr(start, comma - start));
    if (!item.empty()) items.push_back(std::move(item));
    start = comma + 1;
  }
  return items;
}

}  // namespace

StatusOr<std::string> DecodeContentEncoding(std::string_view encoding, std::string body, size_t max_bytes) {
  // Codings are listed in the order they were applied; undo them from the last.
  std::vector<std::string> codings = HeaderItems(encoding);
  codings.erase(std::remove(codings.begin(), codings.end(), "identity"), codings.end());
  auto decode = [&](const std::string& coding) -> StatusOr<std::string> {
    if (coding == "gzip" || coding == "x-gzip") return Inflate(coding, body, max_bytes, 15 + 32);
    if (coding == "deflate") {
      // RFC 9110's deflate is zlib-wrapped (a header whose 16 bits are a multiple of 31);
      // some clients send it raw.
      const auto b0 = static_cast<unsigned char>(body.size() >= 2 ? body[0] : 0);
      const auto b1 = static_cast<unsigned char>(body.size() >= 2 ? body[1] : 0);
      const bool zlib_header = (b0 & 0x0f) == 8 && ((b0 << 8) | b1) % 31 == 0;
      return Inflate(coding, body, max_bytes, zlib_header ? 15 : -15);
    }
    if (coding == "zstd") return Unzstd(body, max_bytes);
    return InvalidArgument("Content-Encoding '" + coding + "' is not supported; send identity, gzip, deflate or zstd",
                           "unsupported_encoding");
  };
  for (auto it = codings.rbegin(); it != codings.rend(); ++it) {
    CTX_ASSIGN_OR_RETURN(body, decode(*it));
  }
  return body;
}

std::string ChooseResponseEncoding(std::string_view accept_encoding) {
  bool zstd = false, gzip = false;
  for (const std::string& item : HeaderItems(accept_encoding)) {
    const size_t semi = item.find(';');
    const std::string coding = TrimLower(std::string_view(item).substr(0, semi));
    if (semi != std::string::npos) {
      // "q=0" (or 0.0, 0.000) refuses the coding; any other weight accepts it.
      std::string q = item.substr(semi + 1);
      q.erase(std::remove_if(q.begin(), q.end(), [](unsigned char c) { return std::isspace(c); }), q.end());
      if (q.rfind("q=0", 0) == 0 && q.find_first_not_of("0.", 2) == std::string::npos) continue;
    }
    zstd |= coding == "zstd";
    gzip |= coding == "gzip" || coding == "x-gzip" || coding == "*";
  }
  return zstd ? "zstd" : gzip ? "gzip" : "";
}

std::string EncodeBody(std::string_view coding, std::string_view body) {
  if (coding == "zstd") {
    std::string out(ZSTD_compressBound(body.size()), '\0');
    const size_t n = ZSTD_compress(out.data(), out.size(), body.data(), body.size(), 1);
    out.resize(ZSTD_isError(n) ? 0 : n);
    return out;
  }
  return ZlibDeflate(body, 15 + 16);
}

std::string ZlibDeflate(std::string_view body, int window_bits, int level) {
  z_stream z{};
  deflateInit2(&z, level, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, body.size()), '\0');  // the bound counts the wrapper too
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(body.data()));
  z.avail_in = static_cast<uInt>(body.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

}  // namespace contextd
