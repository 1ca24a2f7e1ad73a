#include "embed/embedder_registry.h"

#include <spdlog/spdlog.h>

#include "embed/glove_embedder.h"
#include "embed/hash_embedder.h"

namespace contextd {

std::string EmbedderRegistry::GlovePath(const std::string& models_dir) {
  return models_dir + "/glove/glove-6b-100d.i8.bin";
}

EmbedderRegistry::EmbedderRegistry(const std::string& models_dir) {
  std::shared_ptr<const Embedder> hash = std::make_shared<HashEmbedder>(256);
  by_model_[hash->model()] = hash;
  auto glove = GloveEmbedder::Open(GlovePath(models_dir));
  if (glove.ok()) {
    spdlog::info("embedder glove: {} words x {} dims from {}", glove.value()->vocab_size(), glove.value()->dim(),
                 GlovePath(models_dir));
    std::shared_ptr<const Embedder> g = std::move(glove).value();
    by_name_["glove"] = g;
    by_model_[g->model()] = g;
  } else {
    spdlog::warn(
        "embedder glove: vectors unavailable ({}); FALLING BACK to feature hashing ({}). "
        "Run scripts/setup to install them.",
        glove.status().message(), hash->model());
    by_name_["glove"] = hash;
  }
  by_name_["hash"] = hash;
}

StatusOr<std::shared_ptr<const Embedder>> EmbedderRegistry::Resolve(const std::string& name) const {
  auto it = by_name_.find(name);
  if (it == by_name_.end()) {
    return InvalidArgument("unknown embedder '" + name + "'; expected glove, hash or none", "unknown_embedder");
  }
  return it->second;
}

std::shared_ptr<const Embedder> EmbedderRegistry::ByModel(const std::string& model) const {
  auto it = by_model_.find(model);
  return it == by_model_.end() ? nullptr : it->second;
}

}  // namespace contextd
