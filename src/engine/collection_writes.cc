// Collection's write path: the proposer's half (Prepare, Upsert, DeleteDocument: chunk,
// embed, commit a Mutation to the update log) and the applier's half (Apply: the store
// write, then the in-memory indexes). See collection.h for the contract and the locks.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/cores.h"
#include "common/hash.h"
#include "common/memory.h"
#include "engine/chunk_record.h"
#include "engine/collection.h"

namespace contextd {
namespace {

// Graph insertions between two looks at the clock: well under a millisecond of work.
constexpr size_t kIndexingCheckEvery = 16;
// A write indexes its chunks on several threads from this many per thread.
constexpr size_t kMinChunksPerIndexingThread = 32;
// The most new chunks whose terms a write lists for the query cache (a few microseconds
// each); a larger write drops every cached keyword and hybrid answer instead.
constexpr size_t kMaxChunksListedForCache = 256;

}  // namespace

size_t Collection::IndexChunks(const std::vector<std::shared_ptr<HnswIndex>>& targets,
                               const std::vector<uint32_t>& slots, const float* vectors) const {
  // One write's graph inserts on every usable core once there are enough to pay for the
  // threads: in a cluster, writes are applied one at a time, in log order, so a write's
  // own inserts are the only parallelism there is (the graphs take concurrent adds).
  // Only links are worth a thread: a chunk of a graph that does not link yet (a small
  // shard, or one another node indexes) is a vector copied, and a thread started for a
  // write of those cost more than the copies (its stack and allocator cache made and
  // given back, on every node, for every write).
  static const size_t cores = static_cast<size_t>(UsableCores());
  const size_t dim = static_cast<size_t>(config_.dim);
  size_t linked = 0;
  for (const auto& graph : targets) linked += graph->linking();
  const size_t threads = std::min(cores, linked / kMinChunksPerIndexingThread);
  std::atomic<size_t> next{0}, added{0};
  std::atomic<bool> abandoned{false};
  const auto work = [&] {
    for (size_t i = next++; i < slots.size() && !abandoned; i = next++) {
      if (i % kIndexingCheckEvery == 0 && IndexingAbandoned()) {
        abandoned = true;
        break;
      }
      targets[i]->Add(slots[i], vectors + i * dim);
      ++added;
    }
  };
  std::vector<std::thread> helpers;
  const int arena = CurrentThreadArena();  // the helpers allocate where this thread does
  for (size_t t = 1; t < threads; ++t) {
    helpers.emplace_back([&] {
      UseThreadArena(arena);
      work();
    });
  }
  work();
  for (auto& h : helpers) h.join();
  return added;
}

bool Collection::IndexingAbandoned() const {
  const int64_t at = abandon_indexing_ns_.load(std::memory_order_relaxed);
  return at != 0 && clock_->NowNanos() >= at;
}

Status Collection::Prepare(const RequestContext& ctx, std::vector<DocumentInput> docs, Mutation* m) const {
  const size_t dim = static_cast<size_t>(config_.dim);
  m->kind = MutationKind::kUpsertDocuments;
  m->tenant = tenant_;
  m->collection = name_;
  m->collection_id = id_;
  m->dim = static_cast<uint32_t>(dim);
  m->documents.reserve(docs.size());
  size_t titled_chunks = 0;
  for (auto& input : docs) {
    MutationDocument d;
    d.text = std::move(input.text);
    if (input.vector) {
      // A caller-supplied vector describes the whole document: one chunk.
      d.chunks.AddSpan(0, d.text.size());
    } else {
      for (const Chunk& c : ChunkText(d.text, config_.chunking)) d.chunks.AddSpan(c.begin, c.end - c.begin);
      if (!input.title.empty()) titled_chunks += d.chunks.size();
    }
    d.id = std::move(input.id);
    d.title = std::move(input.title);
    d.metadata = std::move(input.metadata);
    d.refs = std::move(input.refs);
    m->documents.push_back(std::move(d));
  }
  // What is embedded: a chunk as it is, or with its document's title (IndexText). Only the
  // titled ones are copied: a 16 MB document's chunks copied again for the embedder were
  // another 16 MB at the write's peak, in blocks that each cost the allocator metadata it
  // keeps for good. Views are taken once m->documents is final (a move may relocate a short
  // text's bytes).
  std::vector<std::string> titled;
  titled.reserve(titled_chunks);
  std::vector<std::string_view> to_embed;
  for (size_t i = 0; i < m->documents.size(); ++i) {
    const MutationDocument& d = m->documents[i];
    if (docs[i].vector || d.title.empty()) continue;
    for (size_t j = 0; j < d.chunks.size(); ++j) titled.push_back(IndexText(d.title, d.chunk(j)));
  }
  for (size_t i = 0, next_titled = 0; i < m->documents.size(); ++i) {
    const MutationDocument& d = m->documents[i];
    if (docs[i].vector) continue;
    for (size_t j = 0; j < d.chunks.size(); ++j)
      to_embed.push_back(d.title.empty() ? d.chunk(j) : std::string_view(titled[next_titled++]));
  }
  std::vector<float> embedded;
  if (!to_embed.empty()) {
    CTX_RETURN_IF_ERROR(ctx.CheckDeadline("embedding the documents"));
    CTX_RETURN_IF_ERROR(EmbedTexts(ctx, to_embed, EmbedPriority::kBulk, &embedded));
  }
  m->vectors.resize(m->chunk_count() * dim);
  size_t row = 0, next_embedded = 0;
  for (size_t i = 0; i < m->documents.size(); ++i) {
    const MutationDocument& d = m->documents[i];
    for (size_t j = 0; j < d.chunks.size(); ++j, ++row) {
      const float* src = docs[i].vector ? docs[i].vector->data() : &embedded[(next_embedded++) * dim];
      std::memcpy(&m->vectors[row * dim], src, sizeof(float) * dim);
    }
  }
  // The keyword terms too (analysis is the slow part of indexing text), once, on the
  // request's thread: a cluster's nodes apply writes one at a time, in log order, and take
  // the terms from the log as they are.
  std::vector<float>().swap(embedded);
  std::vector<std::string> scratch;
  for (MutationDocument& d : m->documents) d.terms = DocumentTerms(*analyzer_, d, &scratch);
  return Status::Ok();
}

std::vector<size_t> Collection::StripesFor(const std::vector<std::string>& ids) const {
  std::vector<size_t> stripes;
  for (const auto& id : ids) stripes.push_back(Hash64(id) % kStripes);
  std::sort(stripes.begin(), stripes.end());  // a global order, so batches cannot deadlock
  stripes.erase(std::unique(stripes.begin(), stripes.end()), stripes.end());
  return stripes;
}

void Collection::RemoveDocLocked(const std::string& id) {
  table_.Remove(id, [this](uint32_t slot) NO_THREAD_SAFETY_ANALYSIS { shards_.Remove(slot); });  // inline, mu_ held
}

Status Collection::Upsert(const RequestContext& ctx, std::vector<DocumentInput> docs, UpsertResult* result) {
  Mutation m;
  CTX_RETURN_IF_ERROR(Prepare(ctx, std::move(docs), &m));
  ApplyResult applied;
  CTX_RETURN_IF_ERROR(log_->Commit(ctx, &m, &applied));
  ctx.usage.bytes_written += applied.bytes_written;
  ctx.usage.documents_written += static_cast<int64_t>(applied.documents);
  result->upserted = applied.documents;
  result->chunks = applied.chunks;
  return Status::Ok();
}

Status Collection::DeleteDocument(const RequestContext& ctx, const std::string& id) {
  if (dropped_) return NotFound("collection '" + name_ + "' was deleted");
  {
    ReaderLock lock(&mu_);
    if (table_.Find(id) == nullptr) return NotFound("document '" + id + "' not found in collection '" + name_ + "'");
  }
  Mutation m;
  m.kind = MutationKind::kDeleteDocument;
  m.tenant = tenant_;
  m.collection = name_;
  m.collection_id = id_;
  m.doc_id = id;
  ApplyResult applied;
  CTX_RETURN_IF_ERROR(log_->Commit(ctx, &m, &applied));
  ctx.usage.bytes_written += applied.bytes_written;
  ctx.usage.documents_written += static_cast<int64_t>(applied.documents);
  return Status::Ok();
}

Status Collection::Apply(Mutation m, ApplyResult* result) {
  if (m.collection_id != id_) return NotFound("collection '" + name_ + "' was deleted");
  switch (m.kind) {
    case MutationKind::kUpsertDocuments:
      return ApplyUpsert(std::move(m), result);
    case MutationKind::kDeleteDocument:
      return ApplyDelete(m, result);
    case MutationKind::kSplitShard:
      return ApplySplit(m, result);
    case MutationKind::kShardUnsplittable:
      return ApplyUnsplittable(m, result);
    default:
      return InvalidArgument(
          "a collection applies upserts, deletes and shard changes, not " + std::string(MutationKindName(m.kind)),
          "invalid_mutation");
  }
}

Status Collection::ApplyUpsert(Mutation m, ApplyResult* result) {
  const size_t dim = static_cast<size_t>(config_.dim);
  const size_t total = m.chunk_count();
  if (m.dim != dim || m.vectors.size() != total * dim) {
    return InvalidArgument("upsert vectors do not match collection '" + name_ + "' (dim " + std::to_string(dim) + ")",
                           "invalid_mutation");
  }
  // Keyword terms outside any lock: analysis is the slow part of indexing text, done by the
  // proposer where the mutation carries them (Prepare). Packed one list per document: a
  // large document's terms wait here for the lock.
  std::vector<TermList> terms;
  std::vector<std::string> ids;
  std::vector<std::string> chunk_terms;
  for (MutationDocument& d : m.documents) {
    ids.push_back(d.id);
    terms.push_back(d.terms.runs() == d.chunks.size() ? std::move(d.terms)
                                                      : DocumentTerms(*analyzer_, d, &chunk_terms));
  }

  std::vector<std::unique_lock<std::mutex>> held;
  for (size_t s : StripesFor(ids)) held.emplace_back(stripes_[s]);
  ReaderLock alive(&drop_mu_);
  if (dropped_) return NotFound("collection '" + name_ + "' was deleted");

  std::vector<size_t> old_counts(m.documents.size(), 0);
  std::vector<uint32_t> slots;  // reserved for the new chunks, in order
  {
    WriterLock lock(&mu_);
    for (size_t i = 0; i < m.documents.size(); ++i) {
      if (const DocumentTable::Document* old = table_.Find(m.documents[i].id)) old_counts[i] = old->slots.size();
    }
    for (size_t i = 0; i < total; ++i) slots.push_back(table_.AllocateSlot());
  }
  // Sized up front: each document's text goes in once (its record; chunks cut from it are
  // spans, engine/chunk_record.h), with a vector per chunk and keys; a 16 MB document's
  // batch grown by doubling peaked at ~130 MB.
  size_t expected_bytes = 1024;
  for (const MutationDocument& d : m.documents) {
    expected_bytes += d.text.size() + d.text.size() / 8 + d.title.size() + 256 + d.chunks.own_bytes();
    expected_bytes += d.chunks.size() * (config_.dim * sizeof(float) + 96);
  }
  WriteBatch batch(expected_bytes);
  size_t row = 0;
  for (size_t i = 0; i < m.documents.size(); ++i) {
    const MutationDocument& d = m.documents[i];
    {  // the record and its serialised copy go before the chunks are added
      Json record = Json::MakeObject();
      if (!d.title.empty()) record["title"] = d.title;
      record["text"] = d.text;
      record["metadata"] = d.metadata;
      if (!d.refs.empty()) {
        Json refs = Json::MakeArray();
        for (const auto& r : d.refs) refs.push_back(r);
        record["refs"] = std::move(refs);
      }
      record["chunks"] = static_cast<int64_t>(d.chunks.size());
      batch.PutDocument(tenant_, id_, d.id, record.Dump());
    }
    for (size_t j = 0; j < d.chunks.size(); ++j, ++row) {
      const float* vec = &m.vectors[row * dim];
      const std::string_view text = d.chunk(j);
      const bool span =
          d.chunks.is_span(j) && d.chunks.span_begin(j) < kChunkSpanMarker && text.size() < kChunkSpanMarker;
      batch.PutChunk(tenant_, id_, d.id, static_cast<uint32_t>(j),
                     span ? EncodeChunkSpan(slots[row], d.chunks.span_begin(j), text.size(), vec, config_.dim)
                          : EncodeChunk(slots[row], text, vec, config_.dim));
    }
    for (size_t j = d.chunks.size(); j < old_counts[i]; ++j) {
      batch.DeleteChunk(tenant_, id_, d.id, static_cast<uint32_t>(j));
    }
  }
  batch.RecordSequence(m.sequence);
  if (Status st = store_->Write(&batch, /*sync=*/true); !st.ok()) {
    WriterLock lock(&mu_);
    for (uint32_t s : slots) table_.ReleaseSlot(s);
    return st;
  }
  result->bytes_written += static_cast<int64_t>(batch.size_bytes());
  result->documents += m.documents.size();
  result->chunks += total;
  WriteChange change;
  change.doc_ids = ids;
  for (size_t i = 0; i < slots.size(); ++i)
    change.chunk_vectors.emplace_back(&m.vectors[i * dim], &m.vectors[(i + 1) * dim]);
  cache_.BeginWrite();
  std::vector<std::shared_ptr<HnswIndex>> targets;  // each new chunk's shard graph
  std::shared_lock<SharedMutex> applying(apply_mu_);
  {
    WriterLock lock(&mu_);
    applied_sequence_ = std::max(applied_sequence_, m.sequence);
    row = 0;
    TermIdCache term_ids;  // terms from the log are numbered per record
    for (size_t i = 0; i < m.documents.size(); ++i) {
      MutationDocument& d = m.documents[i];
      RemoveDocLocked(d.id);
      const size_t n = d.chunks.size();  // Insert() takes the chunks
      table_.Insert(&d, &slots[row], terms[i], &term_ids);
      for (size_t j = 0; j < n; ++j, ++row) targets.push_back(shards_.Place(slots[row], &m.vectors[row * dim]));
    }
  }
  // Still under the documents' stripe locks, so no writer can free these slots meanwhile;
  // the reply waits for the graph, so acknowledged chunks are searchable. Except at
  // shutdown: the store write is durable, so a reply that could no longer be sent in time
  // matters more than chunks the next start indexes anyway.
  if (const size_t added = IndexChunks(targets, slots, m.vectors.data()); added < slots.size()) {
    graph_incomplete_ = true;
    spdlog::warn("collection {}: shutting down; {} of {} chunks left out of the graphs (the next start indexes them)",
                 name_, slots.size() - added, slots.size());
  }
  applying.unlock();
  // Cached keyword answers a new chunk cannot enter are kept: the chunks' terms decide.
  // Past a few hundred chunks, listing them costs more than the entries are worth.
  std::vector<ChunkTerms> new_terms;
  const bool listed = slots.size() <= kMaxChunksListedForCache && cache_.holds_term_entries();
  if (listed) {
    ReaderLock lock(&mu_);
    std::vector<std::pair<std::string, uint16_t>> counts;
    for (uint32_t slot : slots) {
      ChunkTerms& chunk = new_terms.emplace_back();
      table_.keywords().TermsOf(slot, &chunk.len, &counts);
      for (auto& [term, tf] : counts) chunk.tf.emplace(std::move(term), tf);
    }
  }
  cache_.EndWrite(change, listed ? &new_terms : nullptr);
  if (graph_incomplete_) return Status::Ok();
  MaybeRepairGraph();
  MaybeSplit();
  return Status::Ok();
}

Status Collection::ApplyDelete(const Mutation& m, ApplyResult* result) {
  const std::string& id = m.doc_id;
  std::unique_lock<std::mutex> stripe(stripes_[Hash64(id) % kStripes]);
  ReaderLock alive(&drop_mu_);
  if (dropped_) return NotFound("collection '" + name_ + "' was deleted");
  size_t chunks = 0;
  {
    ReaderLock lock(&mu_);
    const DocumentTable::Document* doc = table_.Find(id);
    if (doc == nullptr) return NotFound("document '" + id + "' not found in collection '" + name_ + "'");
    chunks = doc->slots.size();
  }
  WriteBatch batch;
  batch.DeleteDocument(tenant_, id_, id);
  for (size_t j = 0; j < chunks; ++j) batch.DeleteChunk(tenant_, id_, id, static_cast<uint32_t>(j));
  batch.RecordSequence(m.sequence);
  CTX_RETURN_IF_ERROR(store_->Write(&batch, /*sync=*/true));
  result->bytes_written += static_cast<int64_t>(batch.size_bytes());
  result->documents += 1;
  cache_.BeginWrite();
  {
    WriterLock lock(&mu_);
    applied_sequence_ = std::max(applied_sequence_, m.sequence);
    RemoveDocLocked(id);
  }
  WriteChange change;
  change.doc_ids = {id};
  const std::vector<ChunkTerms> no_new_chunks;
  cache_.EndWrite(change, &no_new_chunks);
  MaybeRepairGraph();
  return Status::Ok();
}

}  // namespace contextd
