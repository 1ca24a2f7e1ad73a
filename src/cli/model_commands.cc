// `contextd embed` and `contextd model pull`: native models from the command line.
#include <cstdio>
#include <cstdlib>

#include "cli/commands.h"
#include "common/json.h"
#include "encoder/model_hub.h"
#include "encoder/sentence_encoder.h"

namespace contextd {

int RunModelPull(const PullCliOptions& options) {
  PullOptions po;
  const char* env_endpoint = std::getenv("HF_ENDPOINT");
  po.endpoint = !options.endpoint.empty() ? options.endpoint : env_endpoint != nullptr ? env_endpoint : po.endpoint;
  po.revision = options.revision;
  if (const char* token = std::getenv("HF_TOKEN"); token != nullptr) po.token = token;
  std::string last;
  po.progress = [&](const std::string& file, uint64_t done, uint64_t total) {
    if (file != last) std::fprintf(stderr, "%s%s", last.empty() ? "" : "\n", file.c_str());
    last = file;
    if (total > 0) std::fprintf(stderr, "\r%s %3d%%", file.c_str(), static_cast<int>(done * 100 / total));
  };
  auto r = PullModel(options.repo, options.models_dir, po);
  if (!last.empty()) std::fprintf(stderr, "\n");
  if (!r.ok()) {
    std::fprintf(stderr, "contextd model pull: %s\n", r.status().message().c_str());
    return 1;
  }
  std::printf("{\"model\":\"%s\",\"dir\":\"%s\",\"fetched\":%zu,\"verified\":%zu,\"bytes\":%llu}\n",
              options.repo.c_str(), r->dir.c_str(), r->fetched.size(), r->verified.size(),
              static_cast<unsigned long long>(r->bytes));
  return 0;
}

int RunEmbed(const EmbedCliOptions& options) {
  SentenceEncoderOptions so;
  so.int8 = options.quantize == "int8";
  if (options.model.find("e5") != std::string::npos) {
    so.query_prefix = "query: ";
    so.passage_prefix = "passage: ";
  }
  auto encoder = SentenceEncoder::Load(options.model, so);
  if (!encoder.ok()) {
    std::fprintf(stderr, "contextd embed: %s\n", encoder.status().message().c_str());
    return 1;
  }
  std::vector<std::string_view> texts(options.texts.begin(), options.texts.end());
  const size_t dim = static_cast<size_t>((*encoder)->dim());
  std::vector<float> out(texts.size() * dim);
  std::vector<std::vector<int32_t>> ids;
  if (Status st = (*encoder)->Encode(texts, options.query, out.data(), &ids); !st.ok()) {
    std::fprintf(stderr, "contextd embed: %s\n", st.message().c_str());
    return 1;
  }
  for (size_t i = 0; i < texts.size(); ++i) {
    Json line = Json::MakeObject();
    line["text"] = options.texts[i];
    Json& id_list = line["ids"];
    id_list = Json::MakeArray();
    for (int32_t id : ids[i]) id_list.push_back(static_cast<int64_t>(id));
    Json& vec = line["embedding"];
    vec = Json::MakeArray();
    for (size_t c = 0; c < dim; ++c) vec.push_back(out[i * dim + c]);
    std::printf("%s\n", line.Dump().c_str());
  }
  return 0;
}

}  // namespace contextd
