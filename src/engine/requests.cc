#include "engine/requests.h"

#include "common/names.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "embed/embedder_registry.h"
#include "engine/planner.h"
#include "engine/query_cache.h"
#include "text/utf8.h"

namespace contextd {
namespace {

// `v` with every object's members sorted by name, as text: equal filters, equal keys.
std::string CanonicalJson(const Json& v) {
  if (v.is_object()) {
    std::vector<std::pair<std::string, const Json*>> members;
    for (const auto& [k, m] : v.as_object()) members.emplace_back(k, &m);
    std::sort(members.begin(), members.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::string out = "{";
    for (const auto& [k, m] : members) out += Json(k).Dump() + ":" + CanonicalJson(*m) + ",";
    out += "}";
    return out;
  }
  if (v.is_array()) {
    std::string out = "[";
    for (const auto& item : v.as_array()) out += CanonicalJson(item) + ",";
    return out + "]";
  }
  return v.Dump();
}

}  // namespace

namespace {

// 0.5, 10, 1e-06: numbers in messages as people write them.
std::string ShortNumber(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

Status WrongType(const std::string& field, const char* expected, const Json& got) {
  return InvalidArgument("'" + field + "' must be " + expected + ", got " + std::string(JsonTypeName(got)),
                         "invalid_type");
}

Status CheckKnownFields(const Json& obj, std::initializer_list<const char*> known, const std::string& where) {
  for (const auto& [k, v] : obj.as_object()) {
    bool ok = false;
    for (const char* name : known) ok |= k == name;
    if (!ok) return InvalidArgument("unknown field '" + k + "' in " + where, "unknown_field");
  }
  return Status::Ok();
}

StatusOr<int> ParseIntField(const Json& obj, const char* field, int lo, int hi, int dflt) {
  const Json* v = obj.Find(field);
  if (v == nullptr) return dflt;
  if (!v->is_number() || v->as_double() != std::floor(v->as_double())) return WrongType(field, "an integer", *v);
  double d = v->as_double();
  if (d < lo || d > hi) {
    return InvalidArgument("'" + std::string(field) + "' must be between " + std::to_string(lo) + " and " +
                               std::to_string(hi) + ", got " + v->Dump(),
                           "out_of_range");
  }
  return static_cast<int>(d);
}

// The routing fields of `obj` ("sharding" in a collection, "routing" in a query) into *out.
Status ParseRouting(const Json& obj, const std::string& where, ShardingOptions* out) {
  CTX_ASSIGN_OR_RETURN(int min_probe, ParseIntField(obj, "min_probe", 1, 1024, static_cast<int>(out->min_probe)));
  out->min_probe = static_cast<size_t>(min_probe);
  auto number = [&](const char* name, double lo, double hi, float* field) -> Status {
    const Json* v = obj.Find(name);
    if (v == nullptr) return Status::Ok();
    if (!v->is_number() || v->as_double() < lo || v->as_double() > hi)
      return InvalidArgument(
          "'" + where + "." + name + "' must be a number from " + ShortNumber(lo) + " to " + ShortNumber(hi),
          "out_of_range");
    *field = static_cast<float>(v->as_double());
    return Status::Ok();
  };
  CTX_RETURN_IF_ERROR(number("clear_margin", 0, 100, &out->clear_margin));
  CTX_RETURN_IF_ERROR(number("probe_margin", 0, 100, &out->probe_margin));
  return number("max_probe_fraction", 0.01, 1, &out->max_probe_fraction);
}

}  // namespace

Json CollectionConfig::ToJson() const {
  Json j = Json::MakeObject();
  j["embedder"] = embedder;
  j["model"] = model;
  j["dim"] = dim;
  j["distance"] = std::string(MetricName(metric));
  j["chunking"]["max_tokens"] = chunking.max_tokens;
  j["chunking"]["overlap"] = chunking.overlap;
  j["analyzer"] = analyzer;
  j["index"]["M"] = hnsw_m;
  j["index"]["ef_construction"] = hnsw_ef_construction;
  j["index"]["quantization"] = int8 ? "int8" : "none";
  j["cache"]["enabled"] = cache_enabled;
  j["cache"]["threshold"] = cache_threshold;
  for (int t = 0; t < 3; ++t) {
    Json& tier = j["cache"]["tiers"][QueryCacheTierName(t)];
    tier["max_mb"] = cache_tier_mb[t];
    tier["ttl_s"] = cache_tier_ttl_s[t];
  }
  j["cache"]["verify_fraction"] = cache_verify_fraction;
  j["sharding"] = ShardingOptionsJson(sharding);
  return j;
}

Json ShardingOptionsJson(const ShardingOptions& o) {
  Json j = Json::MakeObject();
  j["max_shard_chunks"] = static_cast<int64_t>(o.max_shard_chunks);
  j["clear_margin"] = o.clear_margin;
  j["probe_margin"] = o.probe_margin;
  j["min_probe"] = static_cast<int64_t>(o.min_probe);
  j["max_probe_fraction"] = o.max_probe_fraction;
  return j;
}

StatusOr<CollectionConfig> CollectionConfig::FromStored(const Json& s) {
  CollectionConfig c;
  const Json *e = s.Find("embedder"), *m = s.Find("model"), *d = s.Find("dim"), *dist = s.Find("distance"),
             *ch = s.Find("chunking"), *an = s.Find("analyzer");
  if (!e || !e->is_string() || !m || !m->is_string() || !d || !d->is_int() || !dist || !dist->is_string() || !ch ||
      !ch->is_object() || !an || !an->is_string()) {
    return Internal("stored collection config is incomplete: " + s.Dump(), "storage_error");
  }
  c.embedder = e->as_string();
  c.model = m->as_string();
  c.dim = static_cast<int>(d->as_int());
  if (!ParseMetric(dist->as_string(), &c.metric)) return Internal("stored distance is unknown", "storage_error");
  const Json *mt = ch->Find("max_tokens"), *ov = ch->Find("overlap");
  if (mt && mt->is_number()) c.chunking.max_tokens = static_cast<int>(mt->as_int());
  if (ov && ov->is_number()) c.chunking.overlap = static_cast<int>(ov->as_int());
  c.analyzer = an->as_string();
  if (const Json* ix = s.Find("index")) {  // absent in collections made before the HNSW index
    if (const Json* m = ix->Find("M"); m && m->is_number()) c.hnsw_m = static_cast<int>(m->as_int());
    if (const Json* q = ix->Find("quantization"); q && q->is_string()) c.int8 = q->as_string() == "int8";
    if (const Json* e = ix->Find("ef_construction"); e && e->is_number()) {
      c.hnsw_ef_construction = static_cast<int>(e->as_int());
    }
  }
  if (const Json* qc = s.Find("cache")) {  // absent in collections made before the query cache
    if (const Json* v = qc->Find("enabled"); v && v->is_bool()) c.cache_enabled = v->as_bool();
    if (const Json* v = qc->Find("threshold"); v && v->is_number())
      c.cache_threshold = static_cast<float>(v->as_double());
    for (int t = 0; t < 3; ++t) {
      const Json* tiers = qc->Find("tiers");
      const Json* tier = tiers != nullptr ? tiers->Find(QueryCacheTierName(t)) : nullptr;
      if (tier == nullptr) continue;
      if (const Json* v = tier->Find("max_mb"); v && v->is_number()) c.cache_tier_mb[t] = static_cast<int>(v->as_int());
      if (const Json* v = tier->Find("ttl_s"); v && v->is_number())
        c.cache_tier_ttl_s[t] = static_cast<int>(v->as_int());
    }
    if (const Json* v = qc->Find("verify_fraction"); v && v->is_number())
      c.cache_verify_fraction = static_cast<float>(v->as_double());
  }
  if (const Json* sh = s.Find("sharding")) {  // absent in collections made before sharding
    if (const Json* v = sh->Find("max_shard_chunks"); v && v->is_number())
      c.sharding.max_shard_chunks = static_cast<size_t>(v->as_int());
    if (const Json* v = sh->Find("clear_margin"); v && v->is_number())
      c.sharding.clear_margin = static_cast<float>(v->as_double());
    if (const Json* v = sh->Find("probe_margin"); v && v->is_number())
      c.sharding.probe_margin = static_cast<float>(v->as_double());
    if (const Json* v = sh->Find("min_probe"); v && v->is_number())
      c.sharding.min_probe = static_cast<size_t>(v->as_int());
    if (const Json* v = sh->Find("max_probe_fraction"); v && v->is_number())
      c.sharding.max_probe_fraction = static_cast<float>(v->as_double());
  }
  return c;
}

Status ValidateCollectionName(const std::string& name) {
  if (name.empty() || name.size() > 64) {
    return InvalidArgument("collection name must be 1 to 64 characters", "invalid_name");
  }
  if (!IsName(name, 64)) {
    return InvalidArgument("collection name may only contain letters, digits, '_' and '-'", "invalid_name");
  }
  return Status::Ok();
}

Status ValidateDocumentId(const std::string& id) {
  if (id.empty() || id.size() > 512) return InvalidArgument("document id must be 1 to 512 bytes", "invalid_id");
  for (char c : id) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return InvalidArgument("document id may not contain control characters", "invalid_id");
    }
  }
  return Status::Ok();
}

StatusOr<CollectionConfig> ParseCollectionRequest(const Json& request, const EmbedderRegistry& embedders) {
  CollectionConfig c;
  const Json empty = Json::MakeObject();
  const Json& body = request.is_null() ? empty : request;  // an empty PUT takes every default
  if (!body.is_object()) return WrongType("body", "an object", body);
  CTX_RETURN_IF_ERROR(CheckKnownFields(
      body, {"embedder", "dim", "distance", "chunking", "analyzer", "index", "cache", "sharding"}, "collection"));
  if (const Json* e = body.Find("embedder")) {
    if (!e->is_string()) return WrongType("embedder", "a string", *e);
    c.embedder = e->as_string();
  }
  const Json* dim = body.Find("dim");
  if (c.embedder == "none") {
    if (dim == nullptr) return InvalidArgument("'dim' is required when 'embedder' is \"none\"", "missing_field");
    CTX_ASSIGN_OR_RETURN(c.dim, ParseIntField(body, "dim", 1, 4096, 0));
  } else {
    CTX_ASSIGN_OR_RETURN(auto embedder, embedders.Resolve(c.embedder));
    c.model = embedder->model();
    c.dim = embedder->dim();
    if (dim != nullptr && !dim->is_number()) return WrongType("dim", "an integer", *dim);
    if (dim != nullptr && dim->as_double() != c.dim) {
      return InvalidArgument("embedder '" + c.embedder + "' produces " + std::to_string(c.dim) +
                                 "-dimensional vectors; 'dim' " + dim->Dump() + " does not match",
                             "dimension_mismatch");
    }
  }
  if (const Json* d = body.Find("distance")) {
    if (!d->is_string()) return WrongType("distance", "a string", *d);
    if (!ParseMetric(d->as_string(), &c.metric)) {
      return InvalidArgument("unknown distance '" + d->as_string() + "'; expected cosine, dot or l2",
                             "invalid_distance");
    }
  }
  if (const Json* ch = body.Find("chunking")) {
    if (!ch->is_object()) return WrongType("chunking", "an object", *ch);
    CTX_RETURN_IF_ERROR(CheckKnownFields(*ch, {"max_tokens", "overlap"}, "chunking"));
    CTX_ASSIGN_OR_RETURN(c.chunking.max_tokens, ParseIntField(*ch, "max_tokens", 8, 8192, 200));
    CTX_ASSIGN_OR_RETURN(c.chunking.overlap, ParseIntField(*ch, "overlap", 0, 8191, 20));
    if (c.chunking.overlap >= c.chunking.max_tokens) {
      return InvalidArgument("chunking 'overlap' must be smaller than 'max_tokens'", "out_of_range");
    }
  }
  if (const Json* ix = body.Find("index")) {
    if (!ix->is_object()) return WrongType("index", "an object", *ix);
    CTX_RETURN_IF_ERROR(CheckKnownFields(*ix, {"M", "ef_construction", "quantization"}, "index"));
    if (const Json* q = ix->Find("quantization")) {
      if (!q->is_string()) return WrongType("index.quantization", "a string", *q);
      if (q->as_string() != "none" && q->as_string() != "int8") {
        return InvalidArgument("unknown quantization '" + q->as_string() + "'; expected none or int8",
                               "invalid_quantization");
      }
      c.int8 = q->as_string() == "int8";
    }
    CTX_ASSIGN_OR_RETURN(c.hnsw_m, ParseIntField(*ix, "M", 4, 64, 16));
    CTX_ASSIGN_OR_RETURN(c.hnsw_ef_construction, ParseIntField(*ix, "ef_construction", 8, 2000, 200));
  }
  if (const Json* qc = body.Find("cache")) {
    if (!qc->is_object()) return WrongType("cache", "an object", *qc);
    CTX_RETURN_IF_ERROR(CheckKnownFields(*qc, {"enabled", "threshold", "tiers", "verify_fraction"}, "cache"));
    if (const Json* vf = qc->Find("verify_fraction")) {
      if (!vf->is_number() || vf->as_double() < 0 || vf->as_double() > 1)
        return InvalidArgument("'cache.verify_fraction' must be a number from 0 to 1", "out_of_range");
      c.cache_verify_fraction = static_cast<float>(vf->as_double());
    }
    if (const Json* en = qc->Find("enabled")) {
      if (!en->is_bool()) return WrongType("cache.enabled", "true or false", *en);
      c.cache_enabled = en->as_bool();
    }
    if (const Json* t = qc->Find("threshold")) {
      c.cache_threshold = t->is_number() ? static_cast<float>(t->as_double()) : 0;
      if (!(c.cache_threshold > 0 && c.cache_threshold <= 1))  // as the float it is kept as
        return InvalidArgument("'cache.threshold' must be a number in (0, 1]", "out_of_range");
    }
    if (const Json* tiers = qc->Find("tiers")) {
      if (!tiers->is_object()) return WrongType("cache.tiers", "an object", *tiers);
      CTX_RETURN_IF_ERROR(CheckKnownFields(*tiers, {"hot", "warm", "cold"}, "cache.tiers"));
      for (int t = 0; t < 3; ++t) {
        const Json* tier = tiers->Find(QueryCacheTierName(t));
        if (tier == nullptr) continue;
        const std::string where = std::string("cache.tiers.") + QueryCacheTierName(t);
        if (!tier->is_object()) return WrongType(where, "an object", *tier);
        CTX_RETURN_IF_ERROR(CheckKnownFields(*tier, {"max_mb", "ttl_s"}, where));
        CTX_ASSIGN_OR_RETURN(c.cache_tier_mb[t], ParseIntField(*tier, "max_mb", 0, 65536, c.cache_tier_mb[t]));
        CTX_ASSIGN_OR_RETURN(c.cache_tier_ttl_s[t],
                             ParseIntField(*tier, "ttl_s", 1, 30 * 24 * 3600, c.cache_tier_ttl_s[t]));
      }
    }
  }
  if (const Json* sh = body.Find("sharding")) {
    if (!sh->is_object()) return WrongType("sharding", "an object", *sh);
    CTX_RETURN_IF_ERROR(CheckKnownFields(
        *sh, {"max_shard_chunks", "clear_margin", "probe_margin", "min_probe", "max_probe_fraction"}, "sharding"));
    CTX_ASSIGN_OR_RETURN(int max_chunks, ParseIntField(*sh, "max_shard_chunks", 16, 100000000,
                                                       static_cast<int>(c.sharding.max_shard_chunks)));
    c.sharding.max_shard_chunks = static_cast<size_t>(max_chunks);
    CTX_RETURN_IF_ERROR(ParseRouting(*sh, "sharding", &c.sharding));
  }
  if (const Json* a = body.Find("analyzer")) {
    if (!a->is_string()) return WrongType("analyzer", "a string", *a);
    if (a->as_string() != "english" && a->as_string() != "standard" && a->as_string() != "none") {
      return InvalidArgument("unknown analyzer '" + a->as_string() + "'; expected english, standard or none",
                             "invalid_analyzer");
    }
    c.analyzer = a->as_string();
  }
  return c;
}

namespace {
constexpr float kMaxVectorComponent = 1e15f;
}  // namespace

StatusOr<std::vector<float>> ParseVector(const Json& v, int dim, const std::string& where) {
  if (!v.is_array()) return WrongType(where, "an array of numbers", v);
  const auto& arr = v.as_array();
  if (static_cast<int>(arr.size()) != dim) {
    return InvalidArgument("'" + where + "' has " + std::to_string(arr.size()) +
                               " dimensions; the collection expects " + std::to_string(dim),
                           "dimension_mismatch");
  }
  std::vector<float> out(arr.size());
  for (size_t i = 0; i < arr.size(); ++i) {
    if (!arr[i].is_number()) return WrongType(where + "[" + std::to_string(i) + "]", "a number", arr[i]);
    out[i] = static_cast<float>(arr[i].as_double());
    if (!std::isfinite(out[i])) {
      return InvalidArgument("'" + where + "[" + std::to_string(i) + "]' is not a finite float", "invalid_vector");
    }
    // Finite but huge components overflow float distances (an L2 score of inf, sent as
    // null); within this bound any distance over 65,536 dimensions stays finite.
    if (std::fabs(out[i]) > kMaxVectorComponent) {
      return InvalidArgument("'" + where + "[" + std::to_string(i) + "]' is " + std::to_string(arr[i].as_double()) +
                                 "; vector components must lie within +-1e15",
                             "invalid_vector");
    }
  }
  return out;
}

StatusOr<std::vector<DocumentInput>> ParseUpsertRequest(const Json& body, int dim, bool needs_vector) {
  if (!body.is_object()) return WrongType("body", "an object", body);
  const Json* docs = body.Find("documents");
  if (docs == nullptr) return InvalidArgument("missing field 'documents'", "missing_field");
  CTX_RETURN_IF_ERROR(CheckKnownFields(body, {"documents"}, "the request"));
  if (!docs->is_array()) return WrongType("documents", "an array", *docs);
  if (docs->as_array().empty()) return InvalidArgument("'documents' is empty", "empty_batch");
  std::vector<DocumentInput> out;
  out.reserve(docs->as_array().size());
  std::set<std::string> ids;
  for (size_t i = 0; i < docs->as_array().size(); ++i) {
    const Json& d = docs->as_array()[i];
    const std::string where = "documents[" + std::to_string(i) + "]";
    if (!d.is_object()) return WrongType(where, "an object", d);
    CTX_RETURN_IF_ERROR(CheckKnownFields(d, {"id", "_id", "title", "text", "metadata", "vector", "refs"}, where));
    DocumentInput doc;
    const Json* id = d.Find("id");
    if (id == nullptr) id = d.Find("_id");
    if (id == nullptr) return InvalidArgument(where + " is missing 'id'", "missing_field");
    if (id->is_int())
      doc.id = std::to_string(id->as_int());
    else if (id->is_string())
      doc.id = id->as_string();
    else
      return WrongType(where + ".id", "a string", *id);
    Status st = ValidateDocumentId(doc.id);
    if (!st.ok()) return InvalidArgument(where + ": " + st.message(), st.reason());
    if (!ids.insert(doc.id).second) {
      return InvalidArgument(where + ": id '" + doc.id + "' appears twice in the batch", "duplicate_id");
    }
    if (const Json* t = d.Find("title")) {
      if (!t->is_string()) return WrongType(where + ".title", "a string", *t);
      doc.title = t->as_string();
    }
    if (const Json* refs = d.Find("refs")) {
      if (!refs->is_array() || refs->as_array().size() > kMaxRefs)
        return InvalidArgument(where + ".refs must be an array of up to " + std::to_string(kMaxRefs) + " document ids",
                               "invalid_value");
      for (const Json& r : refs->as_array()) {
        if (!r.is_string()) return WrongType(where + ".refs[]", "a document id (string)", r);
        CTX_RETURN_IF_ERROR(ValidateDocumentId(r.as_string()));
        doc.refs.push_back(r.as_string());
      }
    }
    if (const Json* v = d.Find("vector")) {
      CTX_ASSIGN_OR_RETURN(doc.vector, ParseVector(*v, dim, where + ".vector"));
    } else if (needs_vector) {
      return InvalidArgument(where + " needs a 'vector': the collection has no embedder", "missing_field");
    }
    const Json* text = d.Find("text");
    if (text == nullptr && !doc.vector) return InvalidArgument(where + " is missing 'text'", "missing_field");
    if (text != nullptr) {
      if (!text->is_string()) return WrongType(where + ".text", "a string", *text);
      if (IsBlankText(text->as_string()))
        return InvalidArgument(where + ".text is empty (nothing but whitespace or control characters)", "empty_text");
      doc.text = text->as_string();
    }
    if (const Json* m = d.Find("metadata")) {
      if (!m->is_object() && !m->is_null()) return WrongType(where + ".metadata", "an object", *m);
      if (m->is_object()) doc.metadata = *m;
    }
    out.push_back(std::move(doc));
  }
  return out;
}

std::string_view QueryModeName(QueryMode m) {
  switch (m) {
    case QueryMode::kVector:
      return "vector";
    case QueryMode::kKeyword:
      return "keyword";
    case QueryMode::kHybrid:
      return "hybrid";
  }
  return "hybrid";
}

StatusOr<QueryRequest> ParseQueryRequest(const Json& body, int dim, bool has_embedder) {
  if (!body.is_object()) return WrongType("body", "an object", body);
  CTX_RETURN_IF_ERROR(
      CheckKnownFields(body,
                       {"query", "vector", "k", "ef", "depth", "mode", "filter", "fusion", "alpha", "mmr", "group_by",
                        "bm25", "cache", "shards", "routing", "strategy", "expand_refs"},
                       "query"));
  QueryRequest q;
  const Json* text = body.Find("query");
  const Json* vec = body.Find("vector");
  if (text == nullptr && vec == nullptr) {
    return InvalidArgument("a query needs 'query' (text) or 'vector'", "missing_field");
  }
  if (text != nullptr) {
    if (!text->is_string()) return WrongType("query", "a string", *text);
    if (IsBlankText(text->as_string()))
      return InvalidArgument("'query' is empty (nothing but whitespace or control characters)", "empty_text");
    q.text = text->as_string();
  }
  if (vec != nullptr) {
    CTX_ASSIGN_OR_RETURN(q.vector, ParseVector(*vec, dim, "vector"));
  }
  CTX_ASSIGN_OR_RETURN(int k, ParseIntField(body, "k", 1, static_cast<int>(kMaxK), 10));
  CTX_ASSIGN_OR_RETURN(int ef, ParseIntField(body, "ef", 1, 10000, 0));  // 0: derived from k
  q.k = static_cast<size_t>(k);
  q.ef = static_cast<size_t>(ef);
  CTX_ASSIGN_OR_RETURN(int depth, ParseIntField(body, "depth", 1, static_cast<int>(kMaxK), 0));  // 0: derived
  q.depth = static_cast<size_t>(depth);
  if (q.vector)
    q.mode = text ? QueryMode::kHybrid : QueryMode::kVector;
  else
    q.mode = has_embedder ? QueryMode::kHybrid : QueryMode::kKeyword;
  if (const Json* m = body.Find("mode")) {
    q.mode_given = true;
    if (!m->is_string()) return WrongType("mode", "a string", *m);
    const std::string& s = m->as_string();
    if (s == "vector")
      q.mode = QueryMode::kVector;
    else if (s == "keyword")
      q.mode = QueryMode::kKeyword;
    else if (s == "hybrid")
      q.mode = QueryMode::kHybrid;
    else
      return InvalidArgument("unknown mode '" + s + "'; expected vector, keyword or hybrid", "invalid_mode");
  }
  if (q.mode != QueryMode::kVector && q.text.empty()) {
    return InvalidArgument(std::string(QueryModeName(q.mode)) + " search needs 'query' text", "missing_field");
  }
  if (q.mode != QueryMode::kKeyword && !q.vector && !has_embedder) {
    return InvalidArgument("the collection has no embedder: send a 'vector' or use mode \"keyword\"", "missing_field");
  }
  if (const Json* f = body.Find("filter")) {
    CTX_ASSIGN_OR_RETURN(q.filter, Filter::Parse(*f));
    q.filter_key = CanonicalJson(*f);
  }
  // A number in [lo, hi] at `where`.
  auto unit = [](const Json& v, const std::string& where, double lo, double hi) -> StatusOr<float> {
    if (!v.is_number() || v.as_double() < lo || v.as_double() > hi)
      return InvalidArgument("'" + where + "' must be a number from " + ShortNumber(lo) + " to " + ShortNumber(hi),
                             "invalid_value");
    return static_cast<float>(v.as_double());
  };
  if (const Json* f = body.Find("fusion")) {
    if (!f->is_string() || (f->as_string() != "rrf" && f->as_string() != "weighted"))
      return InvalidArgument("'fusion' must be \"rrf\" or \"weighted\"", "invalid_value");
    q.fusion = f->as_string() == "rrf" ? Fusion::kRrf : Fusion::kWeighted;
  }
  if (const Json* a = body.Find("alpha")) {
    CTX_ASSIGN_OR_RETURN(q.alpha, unit(*a, "alpha", 0, 1));
    if (q.fusion != Fusion::kWeighted)
      return InvalidArgument("'alpha' applies to \"fusion\":\"weighted\" only", "invalid_value");
  }
  if (const Json* m = body.Find("mmr")) {
    if (!m->is_object()) return WrongType("mmr", "an object like {\"lambda\":0.7}", *m);
    CTX_RETURN_IF_ERROR(CheckKnownFields(*m, {"lambda"}, "mmr"));
    const Json* lambda = m->Find("lambda");
    q.mmr_lambda = 0.7f;
    if (lambda != nullptr) {
      CTX_ASSIGN_OR_RETURN(q.mmr_lambda, unit(*lambda, "mmr.lambda", 0, 1));
    }
  }
  if (const Json* g = body.Find("group_by")) {
    if (!g->is_string() || g->as_string() != "document")
      return InvalidArgument("'group_by' must be \"document\"", "invalid_value");
    q.group_by_document = true;
  }
  if (const Json* c = body.Find("cache")) {
    if (!c->is_string() || (c->as_string() != "bypass" && c->as_string() != "default"))
      return InvalidArgument("'cache' must be \"default\" or \"bypass\"", "invalid_value");
    q.cache_bypass = c->as_string() == "bypass";
  }
  if (const Json* sh = body.Find("shards")) {
    if (!sh->is_string() || (sh->as_string() != "all" && sh->as_string() != "route"))
      return InvalidArgument("'shards' must be \"route\" or \"all\"", "invalid_value");
    q.all_shards = sh->as_string() == "all";
  }
  if (const Json* er = body.Find("expand_refs")) {
    if (!er->is_bool()) return WrongType("expand_refs", "true or false", *er);
    q.expand_refs = er->as_bool();
  }
  if (const Json* st = body.Find("strategy")) {
    std::optional<Strategy> choice;
    if (!st->is_string() || !ParseStrategyChoice(st->as_string(), &choice))
      return InvalidArgument("'strategy' must be auto, simple, moderate or complex", "invalid_value");
    q.strategy = st->as_string();
  }
  if (const Json* r = body.Find("routing")) {
    if (!r->is_object()) return WrongType("routing", "an object", *r);
    CTX_RETURN_IF_ERROR(
        CheckKnownFields(*r, {"clear_margin", "probe_margin", "min_probe", "max_probe_fraction"}, "routing"));
    q.routing.emplace();
    CTX_RETURN_IF_ERROR(ParseRouting(*r, "routing", &*q.routing));
  }

  if (const Json* b = body.Find("bm25")) {
    if (!b->is_object()) return WrongType("bm25", "an object like {\"k1\":1.2,\"b\":0.75}", *b);
    CTX_RETURN_IF_ERROR(CheckKnownFields(*b, {"k1", "b", "title_boost"}, "bm25"));
    if (const Json* tb = b->Find("title_boost")) {
      CTX_ASSIGN_OR_RETURN(q.title_boost, unit(*tb, "bm25.title_boost", 0, 10));
    }
    if (const Json* k1 = b->Find("k1")) {
      CTX_ASSIGN_OR_RETURN(q.bm25_k1, unit(*k1, "bm25.k1", 0, 10));
    }
    if (const Json* bb = b->Find("b")) {
      CTX_ASSIGN_OR_RETURN(q.bm25_b, unit(*bb, "bm25.b", 0, 1));
    }
  }
  return q;
}

std::string QueryCacheKey(const QueryRequest& q) {
  std::string key;
  char buf[64];
  const auto add = [&](const char* name, double v) {
    snprintf(buf, sizeof(buf), "%s=%.9g;", name, v);
    key += buf;
  };
  key += "mode=" + std::string(QueryModeName(q.mode)) + ";";
  add("k", static_cast<double>(q.k));
  add("ef", static_cast<double>(q.ef));
  add("depth", static_cast<double>(q.depth));
  key += q.fusion == Fusion::kRrf ? "fusion=rrf;" : "fusion=weighted;";
  add("alpha", q.alpha);
  if (q.mmr_lambda) add("mmr", *q.mmr_lambda);
  if (q.group_by_document) key += "group=document;";
  if (q.bm25_k1) add("k1", *q.bm25_k1);
  if (q.bm25_b) add("b", *q.bm25_b);
  if (q.title_boost) add("title_boost", *q.title_boost);
  if (q.all_shards) key += "shards=all;";
  if (q.routing) {
    add("clear_margin", q.routing->clear_margin);
    add("probe_margin", q.routing->probe_margin);
    add("min_probe", static_cast<double>(q.routing->min_probe));
    add("max_probe_fraction", q.routing->max_probe_fraction);
  }
  if (q.expand_refs) key += "refs;";
  if (!q.strategy.empty()) key += "strategy=" + q.strategy + ";";
  if (!q.filter_key.empty()) key += "filter=" + q.filter_key + ";";
  return key;
}

}  // namespace contextd
