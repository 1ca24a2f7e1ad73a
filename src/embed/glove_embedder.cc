#include "embed/glove_embedder.h"

#include "common/memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstring>

#include "text/utf8.h"

namespace contextd {
namespace {

template <typename T>
T ReadLE(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

}  // namespace

GloveEmbedder::~GloveEmbedder() {
  if (map_ != nullptr) munmap(map_, map_size_);
}

StatusOr<std::unique_ptr<GloveEmbedder>> GloveEmbedder::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NotFound("cannot open GloVe vectors at " + path + ": " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size < 64) {
    ::close(fd);
    return FailedPrecondition("GloVe file " + path + " is truncated");
  }
  // MAP_POPULATE: read the whole table now (38 MB for GloVe-100), so no query waits on a
  // page of it coming from disk.
  void* map = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return Internal("mmap of " + path + " failed");
  std::unique_ptr<GloveEmbedder> e(new GloveEmbedder());
  e->map_ = map;
  e->map_size_ = static_cast<size_t>(st.st_size);
  const char* base = static_cast<const char*>(map);
  if (std::memcmp(base, "CTXGLV01", 8) != 0) {
    return FailedPrecondition("GloVe file " + path + " has a bad magic number");
  }
  e->dim_ = static_cast<int>(ReadLE<uint32_t>(base + 8));
  e->count_ = ReadLE<uint32_t>(base + 12);
  uint64_t vocab_off = ReadLE<uint64_t>(base + 16), vocab_len = ReadLE<uint64_t>(base + 24);
  uint64_t codes_off = ReadLE<uint64_t>(base + 32), scales_off = ReadLE<uint64_t>(base + 40);
  if (e->dim_ <= 0 || e->dim_ > 4096 || vocab_off + vocab_len > e->map_size_ ||
      codes_off + e->count_ * static_cast<uint64_t>(e->dim_) > e->map_size_ ||
      scales_off + e->count_ * 4 > e->map_size_) {
    return FailedPrecondition("GloVe file " + path + " is truncated or inconsistent");
  }
  e->codes_ = reinterpret_cast<const int8_t*>(base + codes_off);
  e->scales_ = base + scales_off;

  // Zipf: p(rank r) = 1 / ((r + 1) * H_n), H_n ~ ln(n) + Euler-Mascheroni.
  const double harmonic = std::log(static_cast<double>(e->count_)) + 0.5772156649;
  constexpr double kA = 1e-3;
  e->weights_.resize(e->count_);
  e->index_.reserve(e->count_ * 2);
  std::string_view vocab(base + vocab_off, vocab_len);
  size_t pos = 0;
  for (uint32_t r = 0; r < e->count_; ++r) {
    size_t nl = vocab.find('\n', pos);
    if (nl == std::string_view::npos) nl = vocab.size();
    e->index_.emplace(vocab.substr(pos, nl - pos), r);
    double p = 1.0 / ((r + 1.0) * harmonic);
    e->weights_[r] = static_cast<float>(kA / (kA + p));
    pos = nl + 1;
  }
  return e;
}

void GloveEmbedder::EmbedOne(std::string_view text, float* out) const {
  thread_local std::vector<TokenSpan> spans;
  std::fill(out, out + dim_, 0.0f);
  PreTokenize(text, &spans);
  for (const auto& s : spans) {
    if (!s.is_word) continue;  // punctuation carries no topic and would get tiny weights anyway
    std::string word = FoldCase(text.substr(s.begin, s.end - s.begin));
    auto it = index_.find(word);
    if (it == index_.end()) continue;
    uint32_t r = it->second;
    float w = weights_[r] * ReadLE<float>(scales_ + 4 * static_cast<size_t>(r));
    const int8_t* code = codes_ + static_cast<size_t>(r) * dim_;
    for (int j = 0; j < dim_; ++j) out[j] += w * static_cast<float>(code[j]);
  }
  ShrinkScratch(&spans);
  double norm = 0;
  for (int j = 0; j < dim_; ++j) norm += static_cast<double>(out[j]) * out[j];
  if (norm > 0) {
    float inv = static_cast<float>(1.0 / std::sqrt(norm));
    for (int j = 0; j < dim_; ++j) out[j] *= inv;
  }
}

Status GloveEmbedder::Embed(const std::vector<std::string_view>& texts, float* out) const {
  for (size_t i = 0; i < texts.size(); ++i) EmbedOne(texts[i], out + i * dim_);
  return Status::Ok();
}

}  // namespace contextd
