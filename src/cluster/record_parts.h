// Log records larger than one NATS message. The servers refuse messages over their
// max_payload (1 MB by default), so a larger record (a batch of many documents, one large
// document) goes into the log as parts, then an index:
//
//   part   'P' 1 varint(i) varint(n) bytes...   the i-th of n slices of the record
//   index  'I' 1 varint(size) varint(hash) varint(n) varint(seq)*n
//
// The parts are published first, each acknowledged by the stream's quorum; the index,
// published last, names their stream sequences and commits the record: it is applied at
// the index's sequence, every node fetching the parts back from the stream by sequence.
// A part alone is nothing: a writer that dies before the index leaves parts no index
// names, which every node passes over. The hash (XXH3 of the whole record) catches parts
// that do not belong together (a retry whose record changed, under the same key).
//
// The framing is the log's, below the mutation encoding: any mutation may be split.
//
// Thread safety: free functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace contextd {

// A record's slices of at most `part_bytes` each (>= 1), framed as part messages.
std::vector<std::string> SplitRecord(std::string_view record, size_t part_bytes);

// The hash an index carries for `record`.
uint64_t RecordHash(std::string_view record);

struct RecordIndex {
  uint64_t size = 0;                // the whole record's bytes
  uint64_t hash = 0;                // RecordHash of the whole record
  std::vector<uint64_t> sequences;  // the parts' stream sequences, in order
};
std::string EncodeRecordIndex(const RecordIndex& index);

bool IsRecordPart(std::string_view message);
// A part's place: the i-th (from 0) of n. False when the message is not a well-formed part.
bool ParseRecordPart(std::string_view message, uint64_t* i, uint64_t* n);
bool IsRecordIndex(std::string_view message);

// REQUIRES: IsRecordIndex(message). InvalidArgument ("invalid_mutation") when malformed.
StatusOr<RecordIndex> DecodeRecordIndex(std::string_view message);

// Appends part message `message` to *record, checking that it is part `i` of `n`.
Status AppendRecordPart(std::string_view message, uint64_t i, uint64_t n, std::string* record);

// After the last part: the record is whole and is the one the index names.
Status CheckAssembledRecord(const RecordIndex& index, std::string_view record);

}  // namespace contextd
