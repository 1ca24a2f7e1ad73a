#include "cluster/record_compression.h"

#include <zstd.h>

#include <memory>

#include "engine/wire_format.h"

namespace contextd {
namespace {

constexpr char kCompressedMagic = 'Z';
constexpr char kFramingVersion = 1;
// Level 1: the cheapest of zstd's real levels. Level 3 saves another 6% of SciFact's bytes
// for 60% more compression time, paid on the writer's request path.
constexpr int kLevel = 1;

Status Malformed(const std::string& what) {
  return InvalidArgument("a compressed log record " + what, "invalid_mutation");
}

// A context per thread: making one per record allocates and faults in ~1 MB each time.
struct CCtxFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct DCtxFree {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

ZSTD_CCtx* ThreadCCtx() {
  thread_local std::unique_ptr<ZSTD_CCtx, CCtxFree> c(ZSTD_createCCtx());
  return c.get();
}

ZSTD_DCtx* ThreadDCtx() {
  thread_local std::unique_ptr<ZSTD_DCtx, DCtxFree> d(ZSTD_createDCtx());
  return d.get();
}

}  // namespace

StatusOr<LogCompression> ParseLogCompression(std::string_view name) {
  if (name == "zstd") return LogCompression::kZstd;
  if (name == "none") return LogCompression::kNone;
  return InvalidArgument("log compression must be \"zstd\" or \"none\", not \"" + std::string(name) + "\"");
}

std::string_view LogCompressionName(LogCompression how) { return how == LogCompression::kZstd ? "zstd" : "none"; }

std::string CompressRecord(std::string_view record, LogCompression how) {
  if (how == LogCompression::kNone || record.size() < kMinCompressedRecordBytes ||
      record.size() > kMaxDecompressedRecordBytes) {
    return std::string(record);
  }
  std::string out;
  out.push_back(kCompressedMagic);
  out.push_back(kFramingVersion);
  wire::PutVarint(&out, record.size());
  const size_t header = out.size();
  // Worth sending only if it saves an eighth; zstd stops once the frame would pass that.
  const size_t budget = record.size() - record.size() / 8 - header;
  out.resize(header + budget);
  ZSTD_CCtx* c = ThreadCCtx();
  size_t n = 0;
  if (c != nullptr) {
    ZSTD_CCtx_reset(c, ZSTD_reset_session_only);
    ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, kLevel);
    // 4 bytes and a fast hash: a frame that decodes into other bytes is refused, not applied.
    ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
    ZSTD_CCtx_setPledgedSrcSize(c, record.size());
    n = ZSTD_compress2(c, out.data() + header, budget, record.data(), record.size());
  }
  if (c == nullptr || ZSTD_isError(n)) return std::string(record);  // dstSize_tooSmall: it did not pay
  out.resize(header + n);
  return out;
}

bool IsCompressedRecord(std::string_view message) { return message.size() >= 2 && message[0] == kCompressedMagic; }

Status DecompressRecord(std::string_view message, std::string* record) {
  if (!IsCompressedRecord(message) || message[1] != kFramingVersion) return Malformed("has an unknown framing");
  wire::Reader r(message.substr(2));
  uint64_t size = 0;
  if (!r.Varint(&size)) return Malformed("is cut short");
  if (size > kMaxDecompressedRecordBytes) return Malformed("declares " + std::to_string(size) + " bytes");
  const std::string_view frame = r.Rest();
  // The frame states its size too; both must agree before anything is allocated for it.
  const unsigned long long stated = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (stated != size) return Malformed("declares another size than its frame holds");
  record->resize(size);
  ZSTD_DCtx* d = ThreadDCtx();
  if (d == nullptr) return Internal("cannot make a zstd decompression context");
  const size_t n = ZSTD_decompressDCtx(d, record->data(), record->size(), frame.data(), frame.size());
  if (ZSTD_isError(n)) return Malformed(std::string("does not decompress: ") + ZSTD_getErrorName(n));
  if (n != size) return Malformed("decompresses to another size than it declares");
  return Status::Ok();
}

StatusOr<Mutation> DecodeLogRecord(std::string_view record) {
  if (!IsCompressedRecord(record)) return DecodeMutation(record);
  std::string decompressed;
  CTX_RETURN_IF_ERROR(DecompressRecord(record, &decompressed));
  return DecodeMutation(decompressed);
}

}  // namespace contextd
