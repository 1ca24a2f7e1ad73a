#include "encoder/sentence_encoder.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "common/json.h"

namespace contextd {
namespace {

// Missing is fine (nullopt-like: an empty object); unreadable or malformed is an error.
StatusOr<Json> ReadOptionalJson(const std::string& path) {
  if (!std::filesystem::exists(path)) return Json::MakeObject();
  return ReadJsonFile(path);
}

// Texts per Forward() call: enough tokens for large GEMMs, bounded memory.
constexpr size_t kTokensPerForward = 8192;

}  // namespace

StatusOr<std::unique_ptr<SentenceEncoder>> SentenceEncoder::Load(const std::string& dir,
                                                                 const SentenceEncoderOptions& options) {
  if (!std::filesystem::is_directory(dir)) return NotFound("model directory " + dir + " does not exist");
  std::unique_ptr<SentenceEncoder> s(new SentenceEncoder());
  s->options_ = options;
  CTX_ASSIGN_OR_RETURN(BertConfig config, BertConfig::Load(dir));
  s->max_seq_length_ = static_cast<size_t>(config.max_positions);

  // modules.json names the pooling directory; without it, the usual 1_Pooling.
  std::string pooling_dir = dir + "/1_Pooling";
  CTX_ASSIGN_OR_RETURN(Json modules, ReadOptionalJson(dir + "/modules.json"));
  if (modules.is_array()) {
    for (const Json& m : modules.as_array()) {
      const Json* type = m.Find("type");
      const Json* path = m.Find("path");
      if (type == nullptr || !type->is_string())
        return InvalidArgument(dir + "/modules.json: every module needs a string 'type'");
      const std::string& t = type->as_string();
      if (t.find("Pooling") != std::string::npos && path != nullptr && path->is_string()) {
        pooling_dir = dir + "/" + path->as_string();
      } else if (t.find("Transformer") == std::string::npos && t.find("Normalize") == std::string::npos &&
                 t.find("Pooling") == std::string::npos) {
        return InvalidArgument(dir + "/modules.json: module type '" + t +
                               "' is not supported (Transformer, Pooling, Normalize)");
      }
    }
  } else if (!modules.is_object() || !modules.as_object().empty()) {
    return InvalidArgument(dir + "/modules.json must be a JSON array of modules");
  }
  CTX_ASSIGN_OR_RETURN(Json pooling, ReadOptionalJson(pooling_dir + "/config.json"));
  auto flag = [&](const char* key) {
    const Json* f = pooling.Find(key);
    return f != nullptr && f->is_bool() && f->as_bool();
  };
  if (flag("pooling_mode_cls_token")) {
    s->pooling_ = Pooling::kCls;
  } else if (flag("pooling_mode_mean_tokens") || pooling.as_object().empty()) {
    s->pooling_ = Pooling::kMean;
  } else {
    return InvalidArgument(pooling_dir + "/config.json: only mean and CLS pooling are supported");
  }
  if (const Json* dim = pooling.Find("word_embedding_dimension");
      dim != nullptr && dim->is_int() && dim->as_int() != config.hidden) {
    return InvalidArgument(pooling_dir + "/config.json: word_embedding_dimension " + std::to_string(dim->as_int()) +
                           " does not match hidden_size " + std::to_string(config.hidden) + " in config.json");
  }
  CTX_ASSIGN_OR_RETURN(Json st, ReadOptionalJson(dir + "/sentence_bert_config.json"));
  if (const Json* m = st.Find("max_seq_length"); m != nullptr) {
    if (!m->is_int() || m->as_int() < 2 || m->as_int() > config.max_positions)
      return InvalidArgument(dir + "/sentence_bert_config.json: max_seq_length must be 2.." +
                             std::to_string(config.max_positions) + " (max_position_embeddings)");
    s->max_seq_length_ = static_cast<size_t>(m->as_int());
  }
  CTX_ASSIGN_OR_RETURN(s->tokenizer_, WordPieceTokenizer::FromDir(dir));
  if (s->tokenizer_->vocab_size() > static_cast<size_t>(config.vocab_size))
    return InvalidArgument(dir + ": the tokenizer has " + std::to_string(s->tokenizer_->vocab_size()) +
                           " tokens but config.json's vocab_size is " + std::to_string(config.vocab_size));
  EncoderOptions eo;
  eo.int8 = options.int8;
  CTX_ASSIGN_OR_RETURN(s->encoder_, BertEncoder::Load(dir, config, eo));
  return s;
}

std::vector<int32_t> SentenceEncoder::Tokenize(std::string_view text, bool query) const {
  const std::string& prefix = query ? options_.query_prefix : options_.passage_prefix;
  if (prefix.empty()) return tokenizer_->Encode(text, max_seq_length_);
  std::string with(prefix);
  with.append(text);
  return tokenizer_->Encode(with, max_seq_length_);
}

Status SentenceEncoder::Encode(const std::vector<std::string_view>& texts, bool query, float* out,
                               std::vector<std::vector<int32_t>>* ids) const {
  std::vector<std::vector<int32_t>> all(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) all[i] = Tokenize(texts[i], query);
  std::vector<size_t> order(texts.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return all[a].size() < all[b].size(); });
  const size_t d = static_cast<size_t>(dim());
  std::vector<float> pooled;
  for (size_t begin = 0; begin < order.size();) {
    std::vector<std::vector<int32_t>> batch;
    size_t tokens = 0, end = begin;
    while (end < order.size() && (batch.empty() || tokens + all[order[end]].size() <= kTokensPerForward)) {
      tokens += all[order[end]].size();
      batch.push_back(all[order[end]]);
      ++end;
    }
    pooled.resize(batch.size() * d);
    CTX_RETURN_IF_ERROR(encoder_->Forward(batch, pooling_, pooled.data()));
    for (size_t j = 0; j < batch.size(); ++j) {
      const float* v = pooled.data() + j * d;
      float norm = 0;
      for (size_t c = 0; c < d; ++c) norm += v[c] * v[c];
      const float inv = norm > 0 ? 1.0f / std::sqrt(norm) : 0.0f;
      float* o = out + order[begin + j] * d;
      for (size_t c = 0; c < d; ++c) o[c] = v[c] * inv;
    }
    begin = end;
  }
  if (ids != nullptr) *ids = std::move(all);
  return Status::Ok();
}

}  // namespace contextd
