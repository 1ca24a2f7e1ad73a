// EmbedderCatalog: the embedders a server can name ("glove", "hash", "provider:NAME",
// "native:ORG/NAME"). EmbedderRegistry is the real one; tests of the HTTP layer give the
// server a map of in-process embedders instead.
//
// Thread safety: implementations are safe for concurrent use.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "embed/embedder.h"

namespace contextd {

class EmbedderCatalog {
 public:
  virtual ~EmbedderCatalog() = default;
  // InvalidArgument "unknown embedder 'NAME'" (unknown_embedder) when there is none.
  virtual StatusOr<std::shared_ptr<const Embedder>> Resolve(const std::string& name) const = 0;
  // The embedder that produced vectors of `model` ("glove-6b-100d"), if it is loaded; null
  // otherwise.
  virtual std::shared_ptr<const Embedder> ByModel(const std::string& model) const = 0;
  // Every embedder by the name a request uses, for GET /v1/models.
  virtual std::vector<std::pair<std::string, std::shared_ptr<const Embedder>>> List() const = 0;
  // What a request that names no model gets.
  virtual const std::string& default_name() const = 0;
};

}  // namespace contextd
