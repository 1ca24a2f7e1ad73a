#include "engine/document_table.h"

namespace contextd {
namespace {
// Marks title-field terms in the keyword index; the analyzer never emits it.
const std::string kTitleField = "\x01";
}  // namespace

std::string IndexText(const std::string& title, const std::string& chunk) {
  // The title travels with every chunk of its document: it names the topic that a chunk
  // from the middle of a long text may never mention.
  if (title.empty()) return chunk;
  if (chunk.empty()) return title;
  return title + "\n" + chunk;
}

void IndexTerms(const Analyzer& analyzer, const std::string& title, const std::string& chunk,
                std::vector<std::string>* terms) {
  analyzer.Analyze(IndexText(title, chunk), terms);
  if (title.empty()) return;
  // The title again as its own field (terms marked with kTitleField), so queries can
  // weigh a match in the title above one in the body, as BM25 over fields does.
  std::vector<std::string> title_terms;
  analyzer.Analyze(title, &title_terms);
  for (auto& t : title_terms) terms->push_back(kTitleField + t);
}

void QueryTerms(const Analyzer& analyzer, const std::string& text, float title_boost, std::vector<std::string>* terms,
                std::vector<float>* weights) {
  analyzer.Analyze(text, terms);
  weights->assign(terms->size(), 1.0f);
  if (title_boost <= 0) return;
  const size_t n = terms->size();
  for (size_t i = 0; i < n; ++i) {
    terms->push_back(kTitleField + (*terms)[i]);
    weights->push_back(title_boost);
  }
}

const DocumentTable::Document* DocumentTable::Find(const std::string& id) const {
  auto it = docs_.find(id);
  return it == docs_.end() ? nullptr : it->second.get();
}

void DocumentTable::ForEachDocument(const std::function<void(const Document&)>& fn) const {
  for (const auto& [id, doc] : docs_) fn(*doc);
}

size_t DocumentTable::memory_bytes() const {
  return payload_.memory_bytes() + keywords_.memory_bytes() + chunk_text_bytes_ + chunks_.capacity() * sizeof(Chunk);
}

uint32_t DocumentTable::AllocateSlot() {
  if (!free_slots_.empty()) {
    uint32_t s = free_slots_.top();
    free_slots_.pop();
    return s;
  }
  chunks_.emplace_back();
  return static_cast<uint32_t>(chunks_.size() - 1);
}

void DocumentTable::ReleaseSlot(uint32_t slot) { free_slots_.push(slot); }

void DocumentTable::Fill(uint32_t slot, const Document* doc, uint32_t ordinal, std::string text,
                         const TermList& terms) {
  Chunk& c = chunks_[slot];
  c.doc = doc;
  c.ordinal = ordinal;
  c.text = std::move(text);
  chunk_text_bytes_ += c.text.size();
  payload_.Add(slot, doc->metadata);
  keywords_.Add(slot, terms);
  ++live_chunks_;
}

void DocumentTable::Insert(MutationDocument* d, const uint32_t* slots, const std::vector<TermList>& terms) {
  auto doc = std::make_unique<Document>();
  doc->id = d->id;
  doc->title = std::move(d->title);
  doc->metadata = std::move(d->metadata);
  doc->refs = std::move(d->refs);
  for (size_t j = 0; j < d->chunks.size(); ++j) {
    Fill(slots[j], doc.get(), static_cast<uint32_t>(j), std::move(d->chunks[j]), terms[j]);
    doc->slots.push_back(slots[j]);
  }
  std::string id = doc->id;
  docs_.emplace(std::move(id), std::move(doc));
}

bool DocumentTable::Remove(const std::string& id, const std::function<void(uint32_t)>& on_slot) {
  auto it = docs_.find(id);
  if (it == docs_.end()) return false;
  for (uint32_t slot : it->second->slots) {
    on_slot(slot);
    payload_.Remove(slot, it->second->metadata);
    keywords_.Remove(slot);
    --live_chunks_;
    chunk_text_bytes_ -= chunks_[slot].text.size();
    // Swapped out, not assigned: assigning an empty string keeps the old buffer, and a
    // table's deleted chunk texts would stay allocated until their slots were reused.
    Chunk freed;
    std::swap(chunks_[slot], freed);
    free_slots_.push(slot);
  }
  removed_since_trim_check_ += it->second->slots.size();
  docs_.erase(it);
  MaybeTrimFreeSlots();
  return true;
}

void DocumentTable::MaybeTrimFreeSlots() {
  // Looked at once per eighth of the table removed, so the walk and the rebuild below cost
  // O(1) per removed chunk.
  constexpr size_t kMinSlots = 4096;
  if (chunks_.size() < kMinSlots || live_chunks_ >= chunks_.size() / 4 ||
      removed_since_trim_check_ < chunks_.size() / 8) {
    return;
  }
  removed_since_trim_check_ = 0;
  size_t top = chunks_.size();
  while (top > 0 && chunks_[top - 1].doc == nullptr) --top;
  if (top >= chunks_.size() / 4) return;
  chunks_.resize(top);
  chunks_.shrink_to_fit();
  std::vector<uint32_t> free_below;
  for (uint32_t s = 0; s < top; ++s) {
    if (chunks_[s].doc == nullptr) free_below.push_back(s);
  }
  free_slots_ = decltype(free_slots_)(std::greater<uint32_t>(), std::move(free_below));
  keywords_.TrimSlots(top);
}

DocumentTable::Document* DocumentTable::AddLoadedDocument(std::unique_ptr<Document> doc) {
  Document* raw = doc.get();
  std::string id = doc->id;
  docs_.emplace(std::move(id), std::move(doc));
  return raw;
}

DocumentTable::Document* DocumentTable::FindForLoad(const std::string& id) {
  auto it = docs_.find(id);
  return it == docs_.end() ? nullptr : it->second.get();
}

bool DocumentTable::AddLoadedChunk(Document* doc, uint32_t ordinal, uint32_t slot, std::string text,
                                   const std::vector<std::string>& terms) {
  // Slots are stored by the writer; a huge one would mean a corrupt record, not a table
  // that size.
  if (ordinal != doc->slots.size() || slot > (1u << 30) || live(slot)) return false;
  if (chunks_.size() <= slot) chunks_.resize(slot + 1);
  Fill(slot, doc, ordinal, std::move(text), TermList(terms));
  doc->slots.push_back(slot);
  return true;
}

void DocumentTable::FinishLoad() {
  for (uint32_t s = static_cast<uint32_t>(chunks_.size()); s-- > 0;) {
    if (chunks_[s].doc == nullptr) free_slots_.push(s);
  }
}

}  // namespace contextd
