// The embedding gateway endpoints, so existing clients (OpenAI SDKs, LangChain, LlamaIndex,
// TEI clients) can use contextd as a caching, batching embedding service in front of any
// configured embedder:
//   OpenAI: POST /v1/embeddings, GET /v1/models, GET /v1/models/{id}
//   TEI:    POST /embed, POST /tokenize, GET /info, GET /health
#include <bit>
#include <cmath>
#include <cstring>
#include <ctime>
#include <deque>

#include "common/base64.h"
#include "server/api.h"
#include "server/field_reader.h"
#include "text/utf8.h"

namespace contextd {
namespace {

// OpenAI's own limit on inputs per request.
constexpr size_t kMaxInputs = 2048;

// The texts of a request. Token-id inputs are decoded into `owned` (a deque: its strings
// never move); `texts` points into it or into the request body.
struct Inputs {
  std::vector<std::string_view> texts;
  std::deque<std::string> owned;
  // Tokens as given (OpenAI counts token-id inputs by their length); -1 for text inputs.
  std::vector<int64_t> given_tokens;
};

std::string Quoted(const char* field) { return std::string("'") + field + "'"; }

// One list of cl100k token ids, decoded to the text they stand for (bytes of a split
// character become U+FFFD).
Status DecodeTokenIds(const Json::Array& ids, const std::string& where, const TiktokenEncoder* tokenizer, Inputs* out) {
  if (ids.empty()) return InvalidArgument(where + " must not be an empty list of tokens");
  if (tokenizer == nullptr) {
    return Unavailable(
        "token-id input needs the cl100k_base vocabulary, which this server does not have (run scripts/setup)",
        "tokenizer_missing");
  }
  std::vector<uint32_t> tokens;
  tokens.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const Json& id = ids[i];
    if (!id.is_int() || id.as_int() < 0 || static_cast<uint64_t>(id.as_int()) >= tokenizer->vocab_size()) {
      return InvalidArgument(where + "[" + std::to_string(i) + "] must be a cl100k_base token id from 0 to " +
                                 std::to_string(tokenizer->vocab_size() - 1),
                             "out_of_range");
    }
    tokens.push_back(static_cast<uint32_t>(id.as_int()));
  }
  std::string text = ToValidUtf8(tokenizer->Decode(tokens));
  if (IsBlankText(text)) return InvalidArgument(where + " decodes to text with nothing to embed", "empty_text");
  out->texts.push_back(out->owned.emplace_back(std::move(text)));
  out->given_tokens.push_back(static_cast<int64_t>(tokens.size()));
  return Status::Ok();
}

Status AddText(const Json& item, const std::string& where, Inputs* out) {
  if (item.as_string().empty()) return InvalidArgument(where + " must not be empty", "empty_text");
  out->texts.push_back(item.as_string());
  out->given_tokens.push_back(-1);
  return Status::Ok();
}

// "input" (OpenAI) or "inputs" (TEI): a string, a non-empty array of strings, or (OpenAI
// only, with `token_ids`) an array of cl100k token ids or an array of token-id arrays.
Status ReadInputs(const Json& body, const char* field, const TiktokenEncoder* tokenizer, bool token_ids, Inputs* out) {
  const Json* input = body.Find(field);
  if (input == nullptr) return InvalidArgument(Quoted(field) + " is required", "missing_field");
  const std::string kinds = token_ids ? "a string, an array of strings, an array of token ids or an array of "
                                        "token-id arrays"
                                      : "a string or an array of strings";
  if (input->is_string()) return AddText(*input, Quoted(field), out);
  if (!input->is_array()) {
    return InvalidArgument(Quoted(field) + " must be " + kinds + ", not " + std::string(JsonTypeName(*input)));
  }
  const auto& items = input->as_array();
  if (items.empty()) return InvalidArgument(Quoted(field) + " must not be an empty list");
  if (token_ids && items.front().is_number()) {
    // One text given as its tokens.
    CTX_RETURN_IF_ERROR(DecodeTokenIds(items, field, tokenizer, out));
  } else {
    if (items.size() > kMaxInputs) {
      return InvalidArgument(Quoted(field) + " has " + std::to_string(items.size()) + " items; at most " +
                                 std::to_string(kMaxInputs) + " per request",
                             "too_many_inputs");
    }
    // Every item of one kind, as OpenAI requires: strings, or token-id lists.
    const bool lists = token_ids && items.front().is_array();
    for (size_t i = 0; i < items.size(); ++i) {
      const std::string where = std::string(field) + "[" + std::to_string(i) + "]";
      if (lists && items[i].is_array()) {
        CTX_RETURN_IF_ERROR(DecodeTokenIds(items[i].as_array(), where, tokenizer, out));
      } else if (!lists && items[i].is_string()) {
        CTX_RETURN_IF_ERROR(AddText(items[i], where, out));
      } else {
        return InvalidArgument(where + " must be " + (lists ? "an array of token ids" : "a string") + ", not " +
                               std::string(JsonTypeName(items[i])) + " (" + Quoted(field) + " must be " + kinds +
                               ", one kind throughout)");
      }
    }
  }
  return Status::Ok();
}

// Appends one vector as a JSON array. Responses are built as text: a few thousand floats
// through Json objects would cost more than the cache lookup that produced them.
void AppendVector(const float* v, size_t dim, std::string* out) {
  out->push_back('[');
  for (size_t d = 0; d < dim; ++d) {
    if (d) out->push_back(',');
    AppendJsonNumber(v[d], out);
  }
  out->push_back(']');
}

// OpenAI's "base64" encoding: the float32 values' little-endian bytes, in base64.
void AppendVectorBase64(const float* v, size_t dim, std::string* out) {
  static_assert(std::endian::native == std::endian::little, "base64 vectors are sent little-endian");
  out->push_back('"');
  AppendBase64(std::string_view(reinterpret_cast<const char*>(v), dim * sizeof(float)), out);
  out->push_back('"');
}

// Usage is counted in cl100k_base tokens, as OpenAI counts for its embedding models; in
// pre-tokenizer words when the vocabulary is not installed. Token-id inputs count as given.
int64_t CountTextTokens(std::string_view text, const TiktokenEncoder* tokenizer) {
  if (tokenizer != nullptr) return static_cast<int64_t>(tokenizer->Count(text));
  std::vector<TokenSpan> spans;
  PreTokenize(text, &spans);
  return static_cast<int64_t>(spans.size());
}

int64_t CountTokens(const Inputs& inputs, const TiktokenEncoder* tokenizer) {
  int64_t n = 0;
  for (size_t i = 0; i < inputs.texts.size(); ++i) {
    n += inputs.given_tokens[i] >= 0 ? inputs.given_tokens[i] : CountTextTokens(inputs.texts[i], tokenizer);
  }
  return n;
}

// Keeps the first `dims` values of each of `n` rows of `dim` and renormalises them (the
// Matryoshka recipe OpenAI applies for "dimensions"). Rows are compacted in place.
void Truncate(size_t n, size_t dim, size_t dims, std::vector<float>* vecs) {
  for (size_t i = 0; i < n; ++i) {
    const float* src = vecs->data() + i * dim;
    float* dst = vecs->data() + i * dims;
    double norm = 0;
    for (size_t d = 0; d < dims; ++d) norm += static_cast<double>(src[d]) * src[d];
    const float scale = norm > 0 ? static_cast<float>(1.0 / std::sqrt(norm)) : 0.0f;
    for (size_t d = 0; d < dims; ++d) dst[d] = src[d] * scale;
  }
  vecs->resize(n * dims);
}

Json ModelJson(const std::string& name, const Embedder& e, int64_t created) {
  Json m = Json::MakeObject();
  m["id"] = name;
  m["object"] = "model";
  m["created"] = created;
  m["owned_by"] = "contextd";
  // Beyond OpenAI's shape: what a collection with this embedder stores.
  m["model"] = e.model();
  m["dimensions"] = static_cast<int64_t>(e.dim());
  m["truncatable"] = e.truncatable();
  return m;
}

}  // namespace

StatusOr<std::shared_ptr<const Embedder>> Api::EmbedderFor(const Json* model) const {
  const EmbedderCatalog& registry = *backends_.embedders;
  if (model == nullptr) return registry.Resolve(registry.default_name());
  if (!model->is_string()) return InvalidArgument("'model' must be a string");
  // Either a registry name ("glove", "provider:openai") or the model id it reports.
  if (auto e = registry.ByModel(model->as_string())) return e;
  return registry.Resolve(model->as_string());
}

StatusOr<std::shared_ptr<const Embedder>> Api::EmbedForRequest(const RequestContext& ctx, const Json& body,
                                                               const std::vector<std::string_view>& texts,
                                                               std::vector<float>* vecs) const {
  CTX_ASSIGN_OR_RETURN(auto embedder, EmbedderFor(body.Find("model")));
  vecs->resize(texts.size() * static_cast<size_t>(embedder->dim()));
  // A caller is waiting, as for a query.
  CTX_RETURN_IF_ERROR(embedder->EmbedWith(texts, EmbedOptionsFor(ctx, EmbedPriority::kQuery, *embedder), vecs->data()));
  return embedder;
}

StatusOr<Api::Reply> Api::OpenAiEmbeddings(const Params&, const HttpRequest& req, RequestContext& ctx) {
  CTX_ASSIGN_OR_RETURN(Json body, ParseBody(req, false));
  CTX_ASSIGN_OR_RETURN(FieldReader fields, FieldReader::Open(body, ""));
  CTX_RETURN_IF_ERROR(fields.Known({"model", "input", "encoding_format", "dimensions", "user"}));
  std::string format = "float", user;
  CTX_RETURN_IF_ERROR(fields.OneOf("encoding_format", {"float", "base64"}, &format));
  CTX_RETURN_IF_ERROR(fields.String("user", &user));  // accepted, as OpenAI's end-user id
  const bool base64 = format == "base64";
  const Json* dimensions = fields.Find("dimensions");
  Inputs inputs;
  CTX_RETURN_IF_ERROR(ReadInputs(body, "input", backends_.tokenizer, /*token_ids=*/true, &inputs));
  // The model is resolved before embedding so that a bad "dimensions" costs nothing.
  CTX_ASSIGN_OR_RETURN(auto resolved, EmbedderFor(body.Find("model")));
  if (const Json* model = body.Find("model"); model != nullptr && model->is_string())
    ctx.usage_model = model->as_string();
  const size_t dim = static_cast<size_t>(resolved->dim());
  size_t dims = dim;
  if (dimensions != nullptr) {
    const std::string supported = resolved->truncatable()
                                      ? "from 1 to " + std::to_string(dim)
                                      : std::to_string(dim) + " only (its vectors cannot be shortened)";
    if (!dimensions->is_int() || dimensions->as_int() < 1 || static_cast<size_t>(dimensions->as_int()) > dim ||
        (!resolved->truncatable() && static_cast<size_t>(dimensions->as_int()) != dim)) {
      return InvalidArgument("'dimensions' for model '" + resolved->model() + "' must be " + supported,
                             "unsupported_dimensions");
    }
    dims = static_cast<size_t>(dimensions->as_int());
  }
  const int64_t tokens = CountTokens(inputs, backends_.tokenizer);
  CTX_RETURN_IF_ERROR(ctx.ReserveTokens(tokens, /*exact=*/true));
  std::vector<float> vecs;
  CTX_ASSIGN_OR_RETURN(auto embedder, EmbedForRequest(ctx, body, inputs.texts, &vecs));
  if (dims < dim) Truncate(inputs.texts.size(), dim, dims, &vecs);

  Reply r;
  std::string& out = r.raw;
  out.reserve(inputs.texts.size() * dims * (base64 ? 6 : 12) + 128);
  out += "{\"object\":\"list\",\"data\":[";
  for (size_t i = 0; i < inputs.texts.size(); ++i) {
    out += i ? ",{" : "{";
    out += "\"object\":\"embedding\",\"index\":" + std::to_string(i) + ",\"embedding\":";
    const float* row = vecs.data() + i * dims;
    base64 ? AppendVectorBase64(row, dims, &out) : AppendVector(row, dims, &out);
    out += "}";
  }
  out += "],\"model\":";
  AppendJsonString(embedder->model(), &out);
  out +=
      ",\"usage\":{\"prompt_tokens\":" + std::to_string(tokens) + ",\"total_tokens\":" + std::to_string(tokens) + "}}";
  return r;
}

StatusOr<Api::Reply> Api::ListModels(const Params&, const HttpRequest&, RequestContext&) {
  Json data = Json::MakeArray();
  for (const auto& [name, e] : backends_.embedders->List()) data.push_back(ModelJson(name, *e, started_unix_s_));
  Reply r;
  r.json = Json::MakeObject();
  r.json["object"] = "list";
  r.json["data"] = std::move(data);
  return r;
}

StatusOr<Api::Reply> Api::GetModel(const Params& p, const HttpRequest&, RequestContext& ctx) {
  // "native:ORG/NAME" arrives as two segments unless the client encoded its slash.
  std::string id = p[0];
  for (size_t i = 1; i < p.size(); ++i) id += "/" + p[i];
  auto e = backends_.embedders->Resolve(id);
  if (!e.ok()) return NotFound("model '" + id + "' does not exist; GET /v1/models lists them", "model_not_found");
  Reply r;
  r.json = ModelJson(id, **e, started_unix_s_);
  return r;
}

StatusOr<Api::Reply> Api::TeiEmbed(const Params&, const HttpRequest& req, RequestContext& ctx) {
  CTX_ASSIGN_OR_RETURN(Json body, ParseBody(req, false));
  CTX_ASSIGN_OR_RETURN(FieldReader fields, FieldReader::Open(body, ""));
  CTX_RETURN_IF_ERROR(fields.Known({"inputs", "model", "normalize", "truncate", "truncation_direction"}));
  // Every embedder here returns unit vectors, and in-process models truncate inputs past
  // their maximum length themselves; TEI's flags are checked, not acted on.
  bool flag = false;
  std::string direction;
  CTX_RETURN_IF_ERROR(fields.Bool("normalize", &flag));
  CTX_RETURN_IF_ERROR(fields.Bool("truncate", &flag));
  CTX_RETURN_IF_ERROR(fields.OneOf("truncation_direction", {"Left", "Right"}, &direction));
  Inputs inputs;
  CTX_RETURN_IF_ERROR(ReadInputs(body, "inputs", nullptr, /*token_ids=*/false, &inputs));
  if (ctx.limits_tokens()) CTX_RETURN_IF_ERROR(ctx.ReserveTokens(CountTokens(inputs, backends_.tokenizer), true));
  std::vector<float> vecs;
  CTX_ASSIGN_OR_RETURN(auto embedder, EmbedForRequest(ctx, body, inputs.texts, &vecs));
  const size_t dim = static_cast<size_t>(embedder->dim());
  Reply r;
  std::string& out = r.raw;
  out.reserve(inputs.texts.size() * dim * 12 + 16);
  out.push_back('[');
  for (size_t i = 0; i < inputs.texts.size(); ++i) {
    if (i) out.push_back(',');
    AppendVector(vecs.data() + i * dim, dim, &out);
  }
  out.push_back(']');
  return r;
}

StatusOr<Api::Reply> Api::TeiTokenize(const Params&, const HttpRequest& req, RequestContext& ctx) {
  CTX_ASSIGN_OR_RETURN(Json body, ParseBody(req, false));
  CTX_ASSIGN_OR_RETURN(FieldReader fields, FieldReader::Open(body, ""));
  CTX_RETURN_IF_ERROR(fields.Known({"inputs", "add_special_tokens"}));
  bool special = false;  // cl100k adds none
  CTX_RETURN_IF_ERROR(fields.Bool("add_special_tokens", &special));
  const TiktokenEncoder* tokenizer = backends_.tokenizer;
  if (tokenizer == nullptr) {
    return Unavailable(
        "tokenizing needs the cl100k_base vocabulary, which this server does not have (run scripts/setup)",
        "tokenizer_missing");
  }
  Inputs inputs;
  CTX_RETURN_IF_ERROR(ReadInputs(body, "inputs", nullptr, /*token_ids=*/false, &inputs));
  // TEI's shape: one list per input of {id, text, special, start, stop} (byte offsets). The
  // tokens are cl100k_base's: the unit contextd counts usage and budgets in.
  Json all = Json::MakeArray();
  for (std::string_view text : inputs.texts) {
    Json list = Json::MakeArray();
    size_t at = 0;
    for (uint32_t id : tokenizer->Encode(text)) {
      const std::string_view bytes = tokenizer->TokenBytes(id);
      Json t = Json::MakeObject();
      t["id"] = static_cast<int64_t>(id);
      t["text"] = ToValidUtf8(bytes);
      t["special"] = false;
      t["start"] = static_cast<int64_t>(at);
      at += bytes.size();
      t["stop"] = static_cast<int64_t>(at);
      list.push_back(std::move(t));
    }
    all.push_back(std::move(list));
  }
  Reply r;
  r.json = std::move(all);
  return r;
}

StatusOr<Api::Reply> Api::TeiInfo(const Params&, const HttpRequest&, RequestContext&) {
  const EmbedderCatalog& registry = *backends_.embedders;
  CTX_ASSIGN_OR_RETURN(auto embedder, registry.Resolve(registry.default_name()));
  Reply r;
  Json& j = r.json = Json::MakeObject();
  j["model_id"] = embedder->model();
  j["model_sha"] = Json();
  j["model_dtype"] = "float32";
  Json pooling = Json::MakeObject();
  pooling["pooling"] = "mean";
  Json type = Json::MakeObject();
  type["embedding"] = std::move(pooling);
  j["model_type"] = std::move(type);
  j["max_concurrent_requests"] = static_cast<int64_t>(embed_threads_);
  j["max_client_batch_size"] = static_cast<int64_t>(kMaxInputs);
  j["auto_truncate"] = true;
  j["dimensions"] = static_cast<int64_t>(embedder->dim());
  j["version"] = "contextd-0.1.0";
  return r;
}

int64_t Api::TokensOf(std::string_view text) const { return CountTextTokens(text, backends_.tokenizer); }

}  // namespace contextd
