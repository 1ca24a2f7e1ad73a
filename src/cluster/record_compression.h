// Compressed log records. A mutation in cluster mode crosses NATS six times (published to
// the stream's leader, replicated to two followers, delivered to three nodes) and is
// stored by three servers; most of its bytes are text and terms, which zstd at level 1
// shrinks to about 60% (SciFact's ingest: 15.0 MB of records -> 9.3 MB, 44 ms to compress
// on this machine's cores, 12 ms to decompress on each node). A compressed record:
//
//   'Z' 1 varint(size) zstd-frame      size: the record's bytes once decompressed
//
// It sits below the parts framing (cluster/record_parts.h): a compressed record too large
// for one message is split like any other, and the parts' hash is the compressed bytes'.
// A record that would not shrink by an eighth (vectors alone, a short delete) goes in as it
// was: the log carries both forms, and a node reads both.
//
// Thread safety: free functions (each thread keeps its own zstd contexts).
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "engine/mutation.h"

namespace contextd {

// What a node writes into the log. "zstd" (the default) or "none".
enum class LogCompression { kNone, kZstd };
StatusOr<LogCompression> ParseLogCompression(std::string_view name);
std::string_view LogCompressionName(LogCompression how);

// Records smaller than this go in as they are (not worth a zstd frame's overhead).
constexpr size_t kMinCompressedRecordBytes = 512;
// The most a compressed message may declare (it is allocated before decompressing): as
// much as the parts framing carries (1 GB).
constexpr size_t kMaxDecompressedRecordBytes = size_t{1} << 30;

// `record` as the log should carry it: compressed when `how` is kZstd and that saves at
// least an eighth, otherwise the record itself.
std::string CompressRecord(std::string_view record, LogCompression how);

bool IsCompressedRecord(std::string_view message);

// REQUIRES: IsCompressedRecord(message). The record it holds, or InvalidArgument
// ("invalid_mutation") when it is malformed: every node rejects it alike.
Status DecompressRecord(std::string_view message, std::string* record);

// A record as the log carries it, compressed or not, decoded into its mutation. Errors as
// DecompressRecord's and DecodeMutation's.
StatusOr<Mutation> DecodeLogRecord(std::string_view record);

}  // namespace contextd
