// A sentence-transformers model directory as one object: tokenizer, BERT encoder, pooling
// (1_Pooling/config.json: mean or CLS), max_seq_length (sentence_bert_config.json) and L2
// normalisation, computing embeddings as SentenceTransformer.encode does.
//
// Thread safety: immutable after Load(); Encode() is safe for concurrent use.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "encoder/bert.h"
#include "encoder/wordpiece.h"

namespace contextd {

struct SentenceEncoderOptions {
  bool int8 = false;
  // Prepended to texts before tokenisation (e5: "query: " and "passage: ").
  std::string query_prefix, passage_prefix;
};

class SentenceEncoder {
 public:
  // Errors name the missing or inconsistent file.
  static StatusOr<std::unique_ptr<SentenceEncoder>> Load(const std::string& dir, const SentenceEncoderOptions& options);

  int dim() const { return encoder_->config().hidden; }
  size_t max_seq_length() const { return max_seq_length_; }
  Pooling pooling() const { return pooling_; }
  const WordPieceTokenizer& tokenizer() const { return *tokenizer_; }
  const BertEncoder& encoder() const { return *encoder_; }

  // texts -> token ids with the query or passage prefix.
  std::vector<int32_t> Tokenize(std::string_view text, bool query) const;
  // out: texts.size() x dim() floats, unit L2 norm. ids, when not null, receives each
  // text's token ids. Texts are encoded in batches sorted by length, so one long text
  // does not pad (here: lengthen the attention of) the rest.
  Status Encode(const std::vector<std::string_view>& texts, bool query, float* out,
                std::vector<std::vector<int32_t>>* ids = nullptr) const;

 private:
  SentenceEncoder() = default;
  SentenceEncoderOptions options_;
  std::unique_ptr<WordPieceTokenizer> tokenizer_;
  std::unique_ptr<BertEncoder> encoder_;
  Pooling pooling_ = Pooling::kMean;
  size_t max_seq_length_ = 512;
};

}  // namespace contextd
