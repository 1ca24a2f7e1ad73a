// EmbedderRegistry: resolves the embedder names collections use ("glove") to embedder
// instances, loading model files once.
//
// "glove" resolves to the GloVe embedder when its vectors are in the models directory and
// to the feature-hashing fallback otherwise; the fallback is logged at start-up and
// reported through model(), so nobody mistakes it for GloVe.
//
// Thread safety: immutable after construction; safe for concurrent use.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "embed/embedder.h"

namespace contextd {

class EmbedderRegistry {
 public:
  // models_dir: where scripts/setup put the converted vectors (models/glove/...).
  explicit EmbedderRegistry(const std::string& models_dir);

  // The embedder for a collection's "embedder" setting. NotFound for unknown names.
  StatusOr<std::shared_ptr<const Embedder>> Resolve(const std::string& name) const;
  // The embedder that produced vectors of `model`, if it is loaded here.
  std::shared_ptr<const Embedder> ByModel(const std::string& model) const;

  static std::string GlovePath(const std::string& models_dir);

 private:
  std::map<std::string, std::shared_ptr<const Embedder>> by_name_;
  std::map<std::string, std::shared_ptr<const Embedder>> by_model_;
};

}  // namespace contextd
