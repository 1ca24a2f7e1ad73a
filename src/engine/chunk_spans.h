// ChunkSpans: where a document's chunk texts are, without a copy of each.
//
// A chunk the chunker cut is a byte range of its document's text (text/chunker.h), so it is
// kept as that range. A string per chunk was a heap block per chunk for as long as the
// document lived (a 16 MB document is ~8,000 of them, each costing allocator metadata that
// is never returned) plus the overlap between neighbours stored twice. A chunk that is not
// a range of the text (a caller's own, an old log record's, a shard snapshot's chunk whose
// document text is not at hand) keeps its bytes here instead.
//
// The text itself is not held: every accessor takes it, so a span stays valid however the
// owner of the text (MutationDocument, DocumentTable::Document) is moved.
//
// Thread safety: a plain value.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace contextd {

class ChunkSpans {
 public:
  size_t size() const { return pieces_.size(); }
  // Chunk j's bytes. `text` is the document's text the spans were made against.
  // REQUIRES: j < size().
  std::string_view Get(std::string_view text, size_t j) const;
  // True when chunk j is a range of the text (what EncodeMutation writes as a span).
  bool is_span(size_t j) const { return !pieces_[j].own; }
  // REQUIRES: is_span(j).
  uint64_t span_begin(size_t j) const { return pieces_[j].at; }

  // Appends a chunk that is text[at, at + size). REQUIRES: the range is inside the text.
  void AddSpan(uint64_t at, uint64_t size);
  // Appends a chunk of its own bytes.
  void AddOwn(std::string_view chunk);
  // Appends `chunk` as a span when it occurs in `text` after the previous span's start
  // (chunks come in text order, overlapping neighbours start after each other), else as
  // bytes of its own. Empty chunks are kept as their own (no position to give them).
  void Add(std::string_view text, std::string_view chunk);

  // Appends a chunk given as a view: a span when it lies inside `text` (a record decoded
  // against it, engine/chunk_record.h), else as Add() does.
  void AddView(std::string_view text, std::string_view chunk);

  // Bytes held for chunks of their own (not counting the document's text).
  size_t own_bytes() const { return own_.size(); }

 private:
  struct Piece {
    uint64_t at = 0;  // in the text, or in own_ when `own`
    uint32_t size = 0;
    bool own = false;
  };
  std::vector<Piece> pieces_;
  std::string own_;
  uint64_t search_from_ = 0;
};

}  // namespace contextd
