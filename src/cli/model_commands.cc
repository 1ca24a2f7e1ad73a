// `contextd embed`: the native encoder from the command line.
#include <cstdio>

#include "cli/commands.h"
#include "common/json.h"
#include "encoder/sentence_encoder.h"

namespace contextd {

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
