#include "engine/chunk_spans.h"

namespace contextd {

std::string_view ChunkSpans::Get(std::string_view text, size_t j) const {
  const Piece& p = pieces_[j];
  return (p.own ? std::string_view(own_) : text).substr(p.at, p.size);
}

void ChunkSpans::AddSpan(uint64_t at, uint64_t size) {
  pieces_.push_back({at, static_cast<uint32_t>(size), false});
  search_from_ = at + 1;
}

void ChunkSpans::AddOwn(std::string_view chunk) {
  pieces_.push_back({own_.size(), static_cast<uint32_t>(chunk.size()), true});
  own_.append(chunk);
}

void ChunkSpans::Add(std::string_view text, std::string_view chunk) {
  // find() is npos for a start past the end too.
  const size_t at = chunk.empty() ? std::string_view::npos : text.find(chunk, search_from_);
  if (at == std::string_view::npos) {
    AddOwn(chunk);
  } else {
    AddSpan(at, chunk.size());
  }
}

void ChunkSpans::AddView(std::string_view text, std::string_view chunk) {
  // Compared as integers: the views may point into unrelated buffers.
  const auto begin = reinterpret_cast<uintptr_t>(text.data());
  const auto at = reinterpret_cast<uintptr_t>(chunk.data());
  if (!chunk.empty() && at >= begin && at - begin <= text.size() && chunk.size() <= text.size() - (at - begin)) {
    AddSpan(at - begin, chunk.size());
  } else {
    Add(text, chunk);
  }
}

}  // namespace contextd
