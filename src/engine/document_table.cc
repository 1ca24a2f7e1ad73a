#include "engine/document_table.h"

namespace contextd {
namespace {
// Marks title-field terms in the keyword index; the analyzer never emits it.
const std::string kTitleField = "\x01";
}  // namespace

std::string IndexText(std::string_view title, std::string_view chunk) {
  // The title travels with every chunk of its document: it names the topic that a chunk
  // from the middle of a long text may never mention.
  if (title.empty()) return std::string(chunk);
  if (chunk.empty()) return std::string(title);
  std::string out;
  out.reserve(title.size() + 1 + chunk.size());
  out.append(title).append("\n").append(chunk);
  return out;
}

void IndexTerms(const Analyzer& analyzer, std::string_view title, std::string_view chunk,
                std::vector<std::string>* terms) {
  // Untitled chunks are analysed in place, not copied.
  if (title.empty()) {
    analyzer.Analyze(chunk, terms);
    return;
  }
  analyzer.Analyze(IndexText(title, chunk), terms);
  // The title again as its own field (terms marked with kTitleField), so queries can
  // weigh a match in the title above one in the body, as BM25 over fields does.
  std::vector<std::string> title_terms;
  analyzer.Analyze(title, &title_terms);
  for (auto& t : title_terms) terms->push_back(kTitleField + t);
}

TermList DocumentTerms(const Analyzer& analyzer, const MutationDocument& d, std::vector<std::string>* scratch) {
  TermList terms;
  // About the text's size (stop words and spaces dropped, the title added per chunk):
  // grown by doubling, a large document's list peaked at twice its size.
  const size_t body_bytes = d.text.size() + d.chunks.own_bytes();
  const size_t title_bytes = d.title.empty() ? 0 : 2 * (d.title.size() + 1) * d.chunks.size();
  terms.Reserve(body_bytes + title_bytes, body_bytes / 6);
  for (size_t j = 0; j < d.chunks.size(); ++j) {
    scratch->clear();
    IndexTerms(analyzer, d.title, d.chunk(j), scratch);
    for (const auto& t : *scratch) terms.Add(t);
    terms.EndRun();
  }
  return terms;
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
  return payload_.memory_bytes() + keywords_.memory_bytes() + text_bytes_ + chunks_.capacity() * sizeof(Chunk);
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

void DocumentTable::Fill(uint32_t slot, const Document* doc, uint32_t ordinal, const TermSpan& terms,
                         TermIdCache* term_ids) {
  Chunk& c = chunks_[slot];
  c.doc = doc;
  c.ordinal = ordinal;
  payload_.Add(slot, doc->metadata);
  keywords_.Add(slot, terms, term_ids);
  ++live_chunks_;
}

void DocumentTable::Insert(MutationDocument* d, const uint32_t* slots, const TermList& terms, TermIdCache* term_ids) {
  auto doc = std::make_unique<Document>();
  doc->id = d->id;
  doc->title = std::move(d->title);
  doc->metadata = std::move(d->metadata);
  doc->refs = std::move(d->refs);
  doc->text = std::move(d->text);
  doc->chunks = std::move(d->chunks);
  text_bytes_ += doc->text.size() + doc->chunks.own_bytes();
  for (size_t j = 0; j < doc->chunks.size(); ++j) {
    Fill(slots[j], doc.get(), static_cast<uint32_t>(j), terms.run(j), term_ids);
    doc->slots.push_back(slots[j]);
  }
  std::string id = doc->id;
  docs_.emplace(std::move(id), std::move(doc));
}

bool DocumentTable::Remove(const std::string& id, const std::function<void(uint32_t)>& on_slot) {
  auto it = docs_.find(id);
  if (it == docs_.end()) return false;
  text_bytes_ -= it->second->text.size() + it->second->chunks.own_bytes();
  for (uint32_t slot : it->second->slots) {
    on_slot(slot);
    payload_.Remove(slot, it->second->metadata);
    keywords_.Remove(slot);
    --live_chunks_;
    chunks_[slot] = Chunk();
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
  text_bytes_ += doc->text.size();
  std::string id = doc->id;
  docs_.emplace(std::move(id), std::move(doc));
  return raw;
}

DocumentTable::Document* DocumentTable::FindForLoad(const std::string& id) {
  auto it = docs_.find(id);
  return it == docs_.end() ? nullptr : it->second.get();
}

bool DocumentTable::AddLoadedChunk(Document* doc, uint32_t ordinal, uint32_t slot, std::string_view text,
                                   const std::vector<std::string>& terms) {
  // Slots are stored by the writer; a huge one would mean a corrupt record, not a table
  // that size.
  if (ordinal != doc->slots.size() || slot > (1u << 30) || live(slot)) return false;
  if (chunks_.size() <= slot) chunks_.resize(slot + 1);
  const size_t own_before = doc->chunks.own_bytes();
  doc->chunks.AddView(doc->text, text);
  text_bytes_ += doc->chunks.own_bytes() - own_before;
  Fill(slot, doc, ordinal, TermList(terms).all());
  doc->slots.push_back(slot);
  return true;
}

void DocumentTable::FinishLoad() {
  for (uint32_t s = static_cast<uint32_t>(chunks_.size()); s-- > 0;) {
    if (chunks_[s].doc == nullptr) free_slots_.push(s);
  }
}

}  // namespace contextd
