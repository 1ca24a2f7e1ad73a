// DocumentTable: a collection's documents and chunks in memory, with the two indexes over
// their text and metadata: the keyword (BM25) index and the payload index that filters
// select from. Vectors are not here; they live in the shards' graphs (engine/shard_set.h).
//
// Every chunk sits in a numbered slot, the label the keyword, payload and vector indexes
// share. Free slots are reused lowest first, so the numbering depends only on the writes
// applied: replicas applying the same mutations number their chunks alike, and a saved
// graph (labelled by slot) stays valid across a restart.
//
// Thread safety: none of its own. Collection guards it with its mu_: const methods under
// the lock held shared, the others under it held alone.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/json.h"
#include "engine/chunk_spans.h"
#include "engine/mutation.h"
#include "index/bm25_index.h"
#include "index/payload_index.h"
#include "text/analyzer.h"

namespace contextd {

class DocumentTable {
 public:
  struct Document {
    std::string id;
    std::string title;
    Json metadata;
    std::vector<std::string> refs;  // documents this one cites
    std::vector<uint32_t> slots;    // by chunk ordinal
    // The document's text, one buffer, and its chunks as spans of it: a string per chunk
    // was a heap block each for as long as the document lived (engine/chunk_spans.h).
    // Empty text when it is not at hand (a chunk loaded from a shard snapshot).
    std::string text;
    ChunkSpans chunks;  // by ordinal

    std::string_view chunk(size_t ordinal) const { return chunks.Get(text, ordinal); }
  };
  struct Chunk {
    const Document* doc = nullptr;  // null for a free slot
    uint32_t ordinal = 0;

    // REQUIRES: doc != nullptr (a live slot).
    std::string_view text() const { return doc->chunk(ordinal); }
  };

  // Null when there is no document with this id.
  const Document* Find(const std::string& id) const;
  size_t document_count() const { return docs_.size(); }
  size_t chunk_count() const { return live_chunks_; }
  // Slots in use and free: every slot is below this.
  size_t slot_count() const { return chunks_.size(); }
  bool live(uint32_t slot) const { return slot < chunks_.size() && chunks_[slot].doc != nullptr; }
  // REQUIRES: slot < slot_count().
  const Chunk& chunk(uint32_t slot) const { return chunks_[slot]; }
  // Calls fn(const Document&) for every document, in no particular order.
  void ForEachDocument(const std::function<void(const Document&)>& fn) const;

  const Bm25Index& keywords() const { return keywords_; }
  const PayloadIndex& payload() const { return payload_; }
  size_t memory_bytes() const;

  // A free slot for a new chunk, the lowest first (growing the table when none is free).
  uint32_t AllocateSlot();
  // Gives back a slot AllocateSlot() returned that was never filled (a failed write).
  void ReleaseSlot(uint32_t slot);
  // Adds a document, its chunks in `slots` (allocated, one per chunk) and indexed with
  // `terms` (each chunk's keyword terms as one run, in chunk order). d is consumed: its
  // text and chunks move here.
  // Numbered terms are resolved through `term_ids` when given (one per batch of lists
  // numbered alike: a log record's documents).
  // REQUIRES: no document with d's id (Remove() it first); terms.runs() == chunk count.
  void Insert(MutationDocument* d, const uint32_t* slots, const TermList& terms, TermIdCache* term_ids = nullptr);
  // Removes the document and frees its slots, calling on_slot(slot) for each first (the
  // vector index drops it there). False when there is no such document.
  bool Remove(const std::string& id, const std::function<void(uint32_t)>& on_slot);

  // Loading from the store: documents first (with their text, so chunks become spans of
  // it: a chunk's text given as a view into the document's text is kept as that span),
  // then their chunks in ordinal order, then FinishLoad(). AddLoadedChunk is false
  // (and changes nothing) for a chunk that does not fit: a slot already taken, out of
  // range, or not the document's next ordinal.
  Document* AddLoadedDocument(std::unique_ptr<Document> doc);
  Document* FindForLoad(const std::string& id);
  bool AddLoadedChunk(Document* doc, uint32_t ordinal, uint32_t slot, std::string_view text,
                      const std::vector<std::string>& terms);
  void FinishLoad();

 private:
  void Fill(uint32_t slot, const Document* doc, uint32_t ordinal, const TermSpan& terms,
            TermIdCache* term_ids = nullptr);

  // After many removes, frees the slot arrays past the highest chunk in use when that is
  // under a quarter of them (a large document deleted again), here and in the keyword index.
  void MaybeTrimFreeSlots();

  std::unordered_map<std::string, std::unique_ptr<Document>> docs_;
  std::vector<Chunk> chunks_;  // by slot
  // Lowest first (a min-heap), so slot numbering depends only on the mutations applied.
  std::priority_queue<uint32_t, std::vector<uint32_t>, std::greater<uint32_t>> free_slots_;
  size_t live_chunks_ = 0;
  size_t removed_since_trim_check_ = 0;
  size_t text_bytes_ = 0;  // documents' text and chunks of their own
  PayloadIndex payload_;   // metadata, for filters
  Bm25Index keywords_;
};

// How the keyword index sees a chunk and a query. A chunk is indexed as its title and
// its text (IndexText) plus the title again as its own field; a query searches the body
// with weight 1 and the title field with `title_boost` (none when 0).
std::string IndexText(std::string_view title, std::string_view chunk);
void IndexTerms(const Analyzer& analyzer, std::string_view title, std::string_view chunk,
                std::vector<std::string>* terms);
// A document's chunks' terms, one run per chunk, packed in one list (`scratch` is reused
// between chunks).
TermList DocumentTerms(const Analyzer& analyzer, const MutationDocument& d, std::vector<std::string>* scratch);
void QueryTerms(const Analyzer& analyzer, const std::string& text, float title_boost, std::vector<std::string>* terms,
                std::vector<float>* weights);

}  // namespace contextd
