#include "embed/cache_key.h"

#include <xxhash.h>

#include "text/utf8.h"

namespace contextd {

std::string EmbedKey::Bytes() const {
  std::string out(16, '\0');
  for (int i = 0; i < 8; ++i) {
    out[i] = static_cast<char>(hi >> (56 - 8 * i));
    out[8 + i] = static_cast<char>(lo >> (56 - 8 * i));
  }
  return out;
}

std::string NormalizeForCache(std::string_view text) {
  std::string nfc = NormalizeNfc(text);
  std::string out;
  out.reserve(nfc.size());
  bool space = false;
  for (char c : nfc) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

EmbedKey MakeEmbedKey(std::string_view model, std::string_view text) {
  std::string buf;
  buf.reserve(model.size() + 1 + text.size());
  buf.append(model);
  buf.push_back('\0');  // "ab"+"c" and "a"+"bc" differ
  buf.append(NormalizeForCache(text));
  const XXH128_hash_t h = XXH3_128bits(buf.data(), buf.size());
  return {h.high64, h.low64};
}

}  // namespace contextd
