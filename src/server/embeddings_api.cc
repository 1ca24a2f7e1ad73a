// The embedding gateway endpoints: OpenAI's POST /v1/embeddings and TEI's POST /embed, so
// existing clients (OpenAI SDKs, LangChain, LlamaIndex, TEI clients) can use contextd as a
// caching, batching embedding service in front of any configured embedder.
#include "server/api.h"
#include "text/utf8.h"

namespace contextd {
namespace {

// OpenAI's own limit on inputs per request.
constexpr size_t kMaxInputs = 2048;

// "input" (OpenAI) or "inputs" (TEI): a string or a non-empty array of non-empty strings.
Status ReadInputs(const Json& body, const char* field, std::vector<std::string_view>* out) {
  const Json* input = body.Find(field);
  if (input == nullptr) return InvalidArgument(std::string("'") + field + "' is required", "missing_field");
  if (input->is_string()) {
    if (input->as_string().empty()) return InvalidArgument(std::string("'") + field + "' must not be empty");
    out->push_back(input->as_string());
    return Status::Ok();
  }
  if (!input->is_array()) {
    return InvalidArgument(std::string("'") + field + "' must be a string or an array of strings, not " +
                           std::string(JsonTypeName(*input)));
  }
  const auto& items = input->as_array();
  if (items.empty()) return InvalidArgument(std::string("'") + field + "' must not be an empty list");
  if (items.size() > kMaxInputs) {
    return InvalidArgument(std::string("'") + field + "' has " + std::to_string(items.size()) + " items; at most " +
                               std::to_string(kMaxInputs) + " per request",
                           "too_many_inputs");
  }
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string where = std::string(field) + "[" + std::to_string(i) + "]";
    if (!items[i].is_string()) {
      return InvalidArgument(where + " must be a string, not " + std::string(JsonTypeName(items[i])));
    }
    if (items[i].as_string().empty()) return InvalidArgument(where + " must not be empty");
    out->push_back(items[i].as_string());
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

// Usage is counted in cl100k_base tokens, as OpenAI counts for its embedding models; in
// pre-tokenizer words when the vocabulary is not installed.
int64_t CountTokens(const std::vector<std::string_view>& texts, const TiktokenEncoder* tokenizer) {
  std::vector<TokenSpan> spans;
  int64_t n = 0;
  for (auto t : texts) {
    if (tokenizer != nullptr) {
      n += static_cast<int64_t>(tokenizer->Count(t));
      continue;
    }
    spans.clear();
    PreTokenize(t, &spans);
    n += static_cast<int64_t>(spans.size());
  }
  return n;
}

}  // namespace

StatusOr<std::shared_ptr<const Embedder>> Api::EmbedderFor(const Json* model) const {
  const EmbedderRegistry& registry = engine_->embedders();
  if (model == nullptr) return registry.Resolve(registry.default_name());
  if (!model->is_string()) return InvalidArgument("'model' must be a string");
  // Either a registry name ("glove", "provider:openai") or the model id it reports.
  if (auto e = registry.ByModel(model->as_string())) return e;
  return registry.Resolve(model->as_string());
}

StatusOr<std::shared_ptr<const Embedder>> Api::EmbedForRequest(const Json& body,
                                                               const std::vector<std::string_view>& texts,
                                                               std::vector<float>* vecs) const {
  CTX_ASSIGN_OR_RETURN(auto embedder, EmbedderFor(body.Find("model")));
  vecs->resize(texts.size() * static_cast<size_t>(embedder->dim()));
  EmbedOptions options;
  options.priority = EmbedPriority::kQuery;  // a caller is waiting, as for a query
  CTX_RETURN_IF_ERROR(embedder->EmbedWith(texts, options, vecs->data()));
  return embedder;
}

StatusOr<Api::Reply> Api::OpenAiEmbeddings(const Params&, const HttpRequest& req) {
  CTX_ASSIGN_OR_RETURN(Json body, ParseBody(req, false));
  if (!body.is_object()) return InvalidArgument("the request body must be a JSON object");
  for (const auto& [k, v] : body.as_object()) {
    if (k == "encoding_format" && !(v.is_string() && v.as_string() == "float")) {
      return InvalidArgument("only \"encoding_format\":\"float\" is supported");
    }
    if (k != "model" && k != "input" && k != "encoding_format" && k != "user") {
      return InvalidArgument("unknown field '" + k + "'", "unknown_field");
    }
  }
  std::vector<std::string_view> texts;
  CTX_RETURN_IF_ERROR(ReadInputs(body, "input", &texts));
  std::vector<float> vecs;
  CTX_ASSIGN_OR_RETURN(auto embedder, EmbedForRequest(body, texts, &vecs));
  const size_t dim = static_cast<size_t>(embedder->dim());

  Reply r;
  std::string& out = r.raw;
  out.reserve(texts.size() * dim * 12 + 128);
  out += "{\"object\":\"list\",\"data\":[";
  for (size_t i = 0; i < texts.size(); ++i) {
    out += i ? ",{" : "{";
    out += "\"object\":\"embedding\",\"index\":" + std::to_string(i) + ",\"embedding\":";
    AppendVector(vecs.data() + i * dim, dim, &out);
    out += "}";
  }
  out += "],\"model\":";
  AppendJsonString(embedder->model(), &out);
  const std::string tokens = std::to_string(CountTokens(texts, engine_->tokenizer()));
  out += ",\"usage\":{\"prompt_tokens\":" + tokens + ",\"total_tokens\":" + tokens + "}}";
  return r;
}

StatusOr<Api::Reply> Api::TeiEmbed(const Params&, const HttpRequest& req) {
  CTX_ASSIGN_OR_RETURN(Json body, ParseBody(req, false));
  if (!body.is_object()) return InvalidArgument("the request body must be a JSON object");
  for (const auto& [k, v] : body.as_object()) {
    // Accepted for TEI clients; every embedder here returns unit vectors already.
    if (k == "normalize") {
      if (!v.is_bool()) return InvalidArgument("'normalize' must be a boolean");
    } else if (k != "inputs" && k != "truncate" && k != "model") {
      return InvalidArgument("unknown field '" + k + "'", "unknown_field");
    }
  }
  std::vector<std::string_view> texts;
  CTX_RETURN_IF_ERROR(ReadInputs(body, "inputs", &texts));
  std::vector<float> vecs;
  CTX_ASSIGN_OR_RETURN(auto embedder, EmbedForRequest(body, texts, &vecs));
  const size_t dim = static_cast<size_t>(embedder->dim());
  Reply r;
  std::string& out = r.raw;
  out.reserve(texts.size() * dim * 12 + 16);
  out.push_back('[');
  for (size_t i = 0; i < texts.size(); ++i) {
    if (i) out.push_back(',');
    AppendVector(vecs.data() + i * dim, dim, &out);
  }
  out.push_back(']');
  return r;
}

}  // namespace contextd
