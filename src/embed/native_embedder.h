// The native transformer encoder as an Embedder ("native:ORG/NAME"), and the wrapper that
// adds a model's query/passage prefixes (e5's "query: " and "passage: ") by priority.
//
// Thread safety: safe for concurrent use.
#pragma once

#include <memory>
#include <string>

#include "embed/embedder.h"
#include "encoder/sentence_encoder.h"

namespace contextd {

class NativeEmbedder final : public Embedder {
 public:
  // model_id: what model() reports ("native:ORG/NAME", with "#int8" when quantised).
  NativeEmbedder(std::unique_ptr<SentenceEncoder> encoder, std::string model_id)
      : encoder_(std::move(encoder)), model_id_(std::move(model_id)) {}
  std::string model() const override { return model_id_; }
  int dim() const override { return encoder_->dim(); }
  Status Embed(const std::vector<std::string_view>& texts, float* out) const override {
    return encoder_->Encode(texts, /*query=*/false, out);
  }
  const SentenceEncoder& encoder() const { return *encoder_; }

 private:
  std::unique_ptr<SentenceEncoder> encoder_;
  const std::string model_id_;
};

// Prepends query_prefix to texts embedded at query priority and passage_prefix to the
// rest, before the inner embedder (and so before its cache: the key covers the prefix).
class PrefixEmbedder final : public Embedder {
 public:
  PrefixEmbedder(std::shared_ptr<const Embedder> inner, std::string query_prefix, std::string passage_prefix)
      : inner_(std::move(inner)), query_(std::move(query_prefix)), passage_(std::move(passage_prefix)) {}
  std::string model() const override { return inner_->model(); }
  int dim() const override { return inner_->dim(); }
  bool truncatable() const override { return inner_->truncatable(); }
  bool waits() const override { return inner_->waits(); }
  Status Embed(const std::vector<std::string_view>& texts, float* out) const override {
    return EmbedWith(texts, EmbedOptions(), out);
  }
  Status EmbedWith(const std::vector<std::string_view>& texts, const EmbedOptions& options, float* out) const override {
    const std::string& prefix = options.priority == EmbedPriority::kQuery ? query_ : passage_;
    std::vector<std::string> with;
    with.reserve(texts.size());
    for (auto t : texts) with.push_back(prefix + std::string(t));
    std::vector<std::string_view> views(with.begin(), with.end());
    return inner_->EmbedWith(views, options, out);
  }

 private:
  std::shared_ptr<const Embedder> inner_;
  const std::string query_, passage_;
};

}  // namespace contextd
