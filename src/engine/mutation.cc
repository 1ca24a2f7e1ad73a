#include "engine/mutation.h"

#include <algorithm>
#include <cstring>

#include "common/hash.h"
#include "engine/wire_format.h"

namespace contextd {
namespace {

// Format: 'M', version, kind, then fields as varints, length-prefixed bytes and raw
// little-endian floats. A decoder reads every version up to its own and refuses later ones.
// Version 2: an upsert's chunk that is a piece of its document's text (as chunking makes
// them) is sent as the piece's offset and length, not its bytes again: the log carried
// every text twice (a third of nats-server's work in a cluster ingest was moving it).
// Each chunk is a varint tag: 0, then the bytes; or 1, then offset and length.
// Version 3: an upsert ends with its chunks' keyword terms as the proposer analysed them
// (every node stemming and hashing every word again was a third of a replica's apply):
// a varint 0 (none: the applier analyses), or 1 and per chunk a count of distinct terms,
// each a word and its count of occurrences. A word is a varint: 0 and its bytes the first
// time the record names it, else 1 + its number (words are numbered in order of first use).
constexpr char kMagic = 'M';
constexpr uint8_t kVersion = 3;
constexpr uint64_t kNoTerms = 0, kCountedTerms = 1;
constexpr uint64_t kChunkBytes = 0, kChunkSpan = 1;
using wire::PutBytes;
using wire::PutVarint;
using wire::Reader;

Status Corrupt(const std::string& what) { return InvalidArgument("mutation record: " + what, "invalid_mutation"); }

// Numbers the words of an upsert's terms in order of first use: an open-addressing table
// keyed by XXH3 (a std::unordered_map, a heap node per word and a slower hash, cost the
// proposer more than the rest of the record's encoding).
class WordNumbers {
 public:
  // The word's number; `*added` when it had none.
  uint32_t Number(std::string_view word, bool* added) {
    if ((words_.size() + 1) * 2 > slots_.size()) Grow();
    const uint64_t hash = Hash64(word);
    const size_t mask = slots_.size() - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
      Slot& slot = slots_[i];
      if (slot.number == kEmpty) {
        slot = {hash, static_cast<uint32_t>(words_.size())};
        words_.push_back(word);
        *added = true;
        return slot.number;
      }
      if (slot.hash == hash && words_[slot.number] == word) {
        *added = false;
        return slot.number;
      }
    }
  }
  std::string_view word(uint32_t number) const { return words_[number]; }

 private:
  static constexpr uint32_t kEmpty = UINT32_MAX;
  struct Slot {
    uint64_t hash = 0;
    uint32_t number = kEmpty;
  };
  void Grow() {
    std::vector<Slot> old(std::max<size_t>(1024, slots_.size() * 2));
    old.swap(slots_);
    const size_t mask = slots_.size() - 1;
    for (const Slot& s : old) {
      if (s.number == kEmpty) continue;
      size_t i = s.hash & mask;
      while (slots_[i].number != kEmpty) i = (i + 1) & mask;
      slots_[i] = s;
    }
  }
  std::vector<Slot> slots_;
  std::vector<std::string_view> words_;  // views into the documents' lists
};

// An upsert's terms, as version 3 writes them: counted, from lists counted or not.
void PutTerms(std::string* out, const std::vector<MutationDocument>& docs) {
  for (const auto& d : docs) {
    if (d.terms.runs() != d.chunks.size()) {
      PutVarint(out, kNoTerms);
      return;
    }
  }
  PutVarint(out, kCountedTerms);
  WordNumbers numbers;
  uint32_t named = 0;                              // words written out so far: numbers below are known to the reader
  std::vector<uint32_t> place;                     // by word: 1 + its place in the run being counted, 0 if not in it
  std::vector<std::pair<uint32_t, uint32_t>> run;  // word, occurrences; in order of first use
  for (const auto& d : docs) {
    for (size_t j = 0; j < d.terms.runs(); ++j) {
      const TermSpan span = d.terms.run(j);
      run.clear();
      for (size_t i = 0; i < span.size(); ++i) {
        bool added = false;
        const uint32_t word = numbers.Number(span[i], &added);
        if (added) place.push_back(0);
        uint32_t& at = place[word];
        if (at == 0) {
          run.emplace_back(word, 0);
          at = static_cast<uint32_t>(run.size());
        }
        run[at - 1].second += span.count(i);
      }
      PutVarint(out, run.size());
      for (size_t k = 0; k < run.size(); ++k) {
        const auto [word, count] = run[k];
        // Words are numbered in order of first use, and a run lists its words so too: a
        // word's first appearance in the record is the one that names it.
        if (word == named) {
          PutVarint(out, 0);
          PutBytes(out, numbers.word(word));
          ++named;
        } else {
          PutVarint(out, 1 + static_cast<uint64_t>(word));
        }
        PutVarint(out, count);
        place[word] = 0;
      }
    }
  }
}

Status GetTerms(Reader* r, std::vector<MutationDocument>* docs) {
  uint64_t form = 0;
  if (!r->Varint(&form)) return Corrupt("truncated terms");
  if (form == kNoTerms) return Status::Ok();
  if (form != kCountedTerms) return Corrupt("unknown terms form " + std::to_string(form));
  // A word named twice, or twice in one chunk, is no danger: the index adds up a term's
  // counts within a chunk.
  std::vector<std::string_view> words;  // views into the record
  for (auto& d : *docs) {
    for (size_t j = 0; j < d.chunks.size(); ++j) {
      uint64_t distinct = 0, length = 0;
      if (!r->Count(&distinct)) return Corrupt("truncated terms");
      for (uint64_t i = 0; i < distinct; ++i) {
        uint64_t ref = 0, count = 0;
        if (!r->Varint(&ref)) return Corrupt("truncated terms");
        if (ref == 0 && !r->Bytes(&words.emplace_back())) return Corrupt("truncated terms");
        if (ref > words.size()) return Corrupt("a term that names no word before it");
        if (!r->Varint(&count)) return Corrupt("truncated terms");
        if (count == 0 || count > UINT32_MAX) return Corrupt("a term counted " + std::to_string(count) + " times");
        length += count;
        const uint32_t word = static_cast<uint32_t>(ref == 0 ? words.size() - 1 : ref - 1);
        d.terms.AddCounted(words[word], static_cast<uint32_t>(count), word);
      }
      if (length > UINT32_MAX) return Corrupt("a chunk of more than 4G terms");
      d.terms.EndRun();
    }
  }
  return Status::Ok();
}

}  // namespace

std::string_view MutationKindName(MutationKind kind) {
  switch (kind) {
    case MutationKind::kCreateCollection:
      return "create_collection";
    case MutationKind::kDropCollection:
      return "drop_collection";
    case MutationKind::kUpsertDocuments:
      return "upsert_documents";
    case MutationKind::kDeleteDocument:
      return "delete_document";
    case MutationKind::kAppendTurn:
      return "append_turn";
    case MutationKind::kDeleteSession:
      return "delete_session";
    case MutationKind::kCacheConfigure:
      return "cache_configure";
    case MutationKind::kCacheStore:
      return "cache_store";
    case MutationKind::kCacheDelete:
      return "cache_delete";
    case MutationKind::kTenantPut:
      return "tenant_put";
    case MutationKind::kTenantDelete:
      return "tenant_delete";
    case MutationKind::kKeyPut:
      return "key_put";
    case MutationKind::kKeyDelete:
      return "key_delete";
    case MutationKind::kSplitShard:
      return "split_shard";
    case MutationKind::kCacheFeedback:
      return "cache_feedback";
    case MutationKind::kShardUnsplittable:
      return "shard_unsplittable";
  }
  return "unknown";
}

size_t Mutation::chunk_count() const {
  size_t n = 0;
  for (const auto& d : documents) n += d.chunks.size();
  return n;
}

std::string EncodeMutation(const Mutation& m) {
  std::string out;
  out.push_back(kMagic);
  out.push_back(static_cast<char>(kVersion));
  out.push_back(static_cast<char>(m.kind));
  PutVarint(&out, m.sequence);
  PutBytes(&out, m.tenant);
  PutBytes(&out, m.collection);
  PutVarint(&out, m.collection_id);
  switch (m.kind) {
    case MutationKind::kCreateCollection:
      PutBytes(&out, m.config);
      break;
    case MutationKind::kDropCollection:
      break;
    case MutationKind::kDeleteDocument:
      PutBytes(&out, m.doc_id);
      break;
    case MutationKind::kAppendTurn:
      PutBytes(&out, m.session);
      PutBytes(&out, m.role);
      PutBytes(&out, m.content);
      PutVarint(&out, static_cast<uint64_t>(m.at_ms));
      PutVarint(&out, static_cast<uint64_t>(m.ttl_s));
      break;
    case MutationKind::kDeleteSession:
      PutBytes(&out, m.session);
      break;
    case MutationKind::kCacheConfigure:
      PutBytes(&out, m.config);
      break;
    case MutationKind::kCacheStore:
      PutBytes(&out, m.doc_id);
      PutBytes(&out, m.content);
      PutBytes(&out, m.config);
      PutVarint(&out, m.dim);
      PutVarint(&out, m.vectors.size());
      out.append(reinterpret_cast<const char*>(m.vectors.data()), m.vectors.size() * sizeof(float));
      break;
    case MutationKind::kTenantPut:
    case MutationKind::kKeyPut:
      PutBytes(&out, m.config);
      break;
    case MutationKind::kTenantDelete:
    case MutationKind::kKeyDelete:
      PutBytes(&out, m.doc_id);
      break;
    case MutationKind::kCacheFeedback:
      PutBytes(&out, m.doc_id);
      PutBytes(&out, m.config);
      break;
    case MutationKind::kCacheDelete:
      PutVarint(&out, m.ids.size());
      for (const auto& id : m.ids) PutBytes(&out, id);
      break;
    case MutationKind::kShardUnsplittable:
      PutVarint(&out, m.shard);
      break;
    case MutationKind::kSplitShard:
      PutVarint(&out, m.shard);
      PutVarint(&out, m.dim);
      PutVarint(&out, m.vectors.size());
      out.append(reinterpret_cast<const char*>(m.vectors.data()), m.vectors.size() * sizeof(float));
      break;
    case MutationKind::kUpsertDocuments:
      PutVarint(&out, m.dim);
      PutVarint(&out, m.documents.size());
      for (const auto& d : m.documents) {
        PutBytes(&out, d.id);
        PutBytes(&out, d.title);
        PutBytes(&out, d.text);
        PutBytes(&out, d.metadata.Dump());
        PutVarint(&out, d.refs.size());
        for (const auto& r : d.refs) PutBytes(&out, r);
        PutVarint(&out, d.chunks.size());
        for (size_t j = 0; j < d.chunks.size(); ++j) {
          const std::string_view c = d.chunk(j);
          if (!d.chunks.is_span(j)) {
            PutVarint(&out, kChunkBytes);
            PutBytes(&out, c);
            continue;
          }
          PutVarint(&out, kChunkSpan);
          PutVarint(&out, d.chunks.span_begin(j));
          PutVarint(&out, c.size());
        }
      }
      PutVarint(&out, m.vectors.size());
      out.append(reinterpret_cast<const char*>(m.vectors.data()), m.vectors.size() * sizeof(float));
      PutTerms(&out, m.documents);
      break;
  }
  return out;
}

StatusOr<Mutation> DecodeMutation(std::string_view bytes) {
  if (bytes.size() < 3 || bytes[0] != kMagic) return Corrupt("not a mutation");
  const uint8_t version = static_cast<uint8_t>(bytes[1]);
  if (version < 1 || version > kVersion) return Corrupt("unknown version " + std::to_string(version));
  Mutation m;
  const uint8_t kind = static_cast<uint8_t>(bytes[2]);
  if (kind < 1 || kind > static_cast<uint8_t>(MutationKind::kShardUnsplittable))
    return Corrupt("unknown kind " + std::to_string(kind));
  m.kind = static_cast<MutationKind>(kind);
  Reader r(bytes.substr(3));
  if (!r.Varint(&m.sequence) || !r.Bytes(&m.tenant) || !r.Bytes(&m.collection) || !r.Varint(&m.collection_id)) {
    return Corrupt("truncated header");
  }
  switch (m.kind) {
    case MutationKind::kCreateCollection:
      if (!r.Bytes(&m.config)) return Corrupt("truncated config");
      break;
    case MutationKind::kDropCollection:
      break;
    case MutationKind::kDeleteDocument:
      if (!r.Bytes(&m.doc_id)) return Corrupt("truncated document id");
      break;
    case MutationKind::kAppendTurn: {
      uint64_t at = 0, ttl = 0;
      if (!r.Bytes(&m.session) || !r.Bytes(&m.role) || !r.Bytes(&m.content) || !r.Varint(&at) || !r.Varint(&ttl) ||
          at > static_cast<uint64_t>(INT64_MAX) || ttl > static_cast<uint64_t>(INT64_MAX)) {
        return Corrupt("truncated session turn");
      }
      m.at_ms = static_cast<int64_t>(at);
      m.ttl_s = static_cast<int64_t>(ttl);
      break;
    }
    case MutationKind::kDeleteSession:
      if (!r.Bytes(&m.session)) return Corrupt("truncated session id");
      break;
    case MutationKind::kCacheConfigure:
    case MutationKind::kTenantPut:
    case MutationKind::kKeyPut:
      if (!r.Bytes(&m.config)) return Corrupt("truncated record");
      break;
    case MutationKind::kTenantDelete:
    case MutationKind::kKeyDelete:
      if (!r.Bytes(&m.doc_id)) return Corrupt("truncated id");
      break;
    case MutationKind::kCacheFeedback:
      if (!r.Bytes(&m.doc_id) || !r.Bytes(&m.config)) return Corrupt("truncated cache feedback");
      break;
    case MutationKind::kCacheStore: {
      uint64_t dim = 0, floats = 0;
      if (!r.Bytes(&m.doc_id) || !r.Bytes(&m.content) || !r.Bytes(&m.config) || !r.Varint(&dim) || dim == 0 ||
          dim > 65536 || !r.Varint(&floats) || floats != dim || !r.Floats(&m.vectors, floats)) {
        return Corrupt("truncated cache entry");
      }
      m.dim = static_cast<uint32_t>(dim);
      break;
    }
    case MutationKind::kCacheDelete: {
      uint64_t n = 0;
      if (!r.Count(&n)) return Corrupt("truncated cache delete");
      m.ids.resize(n);
      for (auto& id : m.ids) {
        if (!r.Bytes(&id)) return Corrupt("truncated cache delete");
      }
      break;
    }
    case MutationKind::kSplitShard: {
      uint64_t shard = 0, dim = 0, floats = 0;
      if (!r.Varint(&shard) || shard > UINT32_MAX || !r.Varint(&dim) || dim == 0 || dim > 65536 || !r.Varint(&floats) ||
          floats % dim != 0 || !r.Floats(&m.vectors, floats)) {
        return Corrupt("truncated shard split");
      }
      m.shard = static_cast<uint32_t>(shard);
      m.dim = static_cast<uint32_t>(dim);
      break;
    }
    case MutationKind::kShardUnsplittable: {
      uint64_t shard = 0;
      if (!r.Varint(&shard) || shard > UINT32_MAX) return Corrupt("truncated unsplittable shard");
      m.shard = static_cast<uint32_t>(shard);
      break;
    }
    case MutationKind::kUpsertDocuments: {
      uint64_t dim = 0, docs = 0;
      if (!r.Varint(&dim) || dim == 0 || dim > 65536 || !r.Count(&docs)) return Corrupt("truncated upsert");
      m.dim = static_cast<uint32_t>(dim);
      m.documents.resize(docs);
      for (auto& d : m.documents) {
        std::string metadata;
        uint64_t refs = 0, chunks = 0;
        if (!r.Bytes(&d.id) || !r.Bytes(&d.title) || !r.Bytes(&d.text) || !r.Bytes(&metadata) || !r.Count(&refs)) {
          return Corrupt("truncated document");
        }
        auto parsed = ParseJson(metadata);
        if (!parsed.ok() || !parsed->is_object()) return Corrupt("document metadata is not a JSON object");
        d.metadata = std::move(parsed).value();
        d.refs.resize(refs);
        for (auto& ref : d.refs) {
          if (!r.Bytes(&ref)) return Corrupt("truncated refs");
        }
        if (!r.Count(&chunks)) return Corrupt("truncated chunks");
        for (uint64_t j = 0; j < chunks; ++j) {
          uint64_t tag = kChunkBytes, at = 0, size = 0;
          if (version >= 2 && !r.Varint(&tag)) return Corrupt("truncated chunk");
          if (tag == kChunkBytes) {
            std::string_view c;
            if (!r.Bytes(&c)) return Corrupt("truncated chunk");
            d.chunks.AddOwn(c);
          } else if (tag == kChunkSpan) {
            if (!r.Varint(&at) || !r.Varint(&size)) return Corrupt("truncated chunk");
            if (at > d.text.size() || size > d.text.size() - at) return Corrupt("chunk outside its document's text");
            if (size > UINT32_MAX) return Corrupt("chunk larger than 4 GiB");
            d.chunks.AddSpan(at, size);
          } else {
            return Corrupt("unknown chunk form " + std::to_string(tag));
          }
        }
      }
      uint64_t floats = 0;
      if (!r.Varint(&floats) || !r.Floats(&m.vectors, floats)) return Corrupt("truncated vectors");
      if (m.vectors.size() != m.chunk_count() * m.dim) return Corrupt("vector count does not match the chunks");
      if (version >= 3) CTX_RETURN_IF_ERROR(GetTerms(&r, &m.documents));
      break;
    }
  }
  if (!r.done()) return Corrupt("trailing bytes");
  return m;
}

}  // namespace contextd
