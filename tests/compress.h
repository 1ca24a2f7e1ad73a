// Compressing request bodies as HTTP clients do, for the Content-Encoding tests.
#pragma once

#include <zlib.h>
#include <zstd.h>

#include <string>

namespace contextd {

// window_bits: 15 + 16 gzip, 15 zlib ("deflate" as RFC 9110 means it), -15 raw deflate.
inline std::string ZlibCompress(const std::string& in, int window_bits) {
  z_stream z{};
  deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, in.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}
inline std::string Gzip(const std::string& in) { return ZlibCompress(in, 15 + 16); }

inline std::string Zstd(const std::string& in) {
  std::string out(ZSTD_compressBound(in.size()), '\0');
  out.resize(ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 1));
  return out;
}

}  // namespace contextd
