#include "common/request_context.h"

#include <random>

namespace contextd {
namespace {

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

constexpr char kHex[] = "0123456789abcdef";

bool AllZero(std::string_view s) { return s.find_first_not_of('0') == std::string_view::npos; }

std::string RandomHex(size_t digits) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string out;
  while (out.size() < digits) {
    uint64_t x = rng();
    for (int i = 0; i < 16 && out.size() < digits; ++i, x >>= 4) out.push_back(kHex[x & 15]);
  }
  if (AllZero(out)) out.back() = '1';  // all-zero ids are invalid
  return out;
}

}  // namespace

std::optional<TraceContext> TraceContext::Parse(std::string_view h) {
  // version "-" trace-id "-" parent-id "-" flags; later versions may append "-..." fields.
  if (h.size() < 55 || h[2] != '-' || h[35] != '-' || h[52] != '-') return std::nullopt;
  const std::string_view version = h.substr(0, 2), trace = h.substr(3, 32), parent = h.substr(36, 16),
                         flags = h.substr(53, 2);
  if (!IsLowerHex(version) || version == "ff" || !IsLowerHex(trace) || !IsLowerHex(parent) || !IsLowerHex(flags)) {
    return std::nullopt;
  }
  if (AllZero(trace) || AllZero(parent)) return std::nullopt;
  if (version == "00" && h.size() != 55) return std::nullopt;
  if (h.size() > 55 && h[55] != '-') return std::nullopt;
  TraceContext t;
  t.trace_id = std::string(trace);
  t.parent_id = std::string(parent);
  t.flags = static_cast<uint8_t>(std::stoi(std::string(flags), nullptr, 16));
  return t;
}

TraceContext TraceContext::Start() {
  TraceContext t;
  t.trace_id = RandomHex(32);
  t.span_id = RandomHex(16);
  return t;
}

TraceContext TraceContext::Continue(const TraceContext& caller) {
  TraceContext t = caller;
  t.span_id = RandomHex(16);
  return t;
}

std::string TraceContext::Header() const {
  std::string h = "00-" + trace_id + "-" + span_id + "-";
  h.push_back(kHex[flags >> 4]);
  h.push_back(kHex[flags & 15]);
  return h;
}

const RequestContext& RequestContext::Background() {
  static const RequestContext background;
  return background;
}

int64_t RequestContext::RemainingMs() const {
  if (deadline_ns == 0) return 0;
  const int64_t left = (deadline_ns - clock_->NowNanos()) / 1000000;
  return left < 1 ? 1 : left;
}

Status RequestContext::CheckDeadline(std::string_view next_step) const {
  if (ShuttingDown()) {
    return Unavailable("the server is shutting down; stopped before " + std::string(next_step) +
                           " (nothing was changed; retry on another node)",
                       "shutting_down");
  }
  if (deadline_ns == 0 || clock_->NowNanos() < deadline_ns) return Status::Ok();
  return DeadlineExceeded("the request's deadline passed before " + std::string(next_step) +
                          " (set it with the X-Request-Timeout-Ms header)");
}

void RequestContext::CountEmbeddingTokens(const std::vector<std::string_view>& texts) const {
  if (token_counter == nullptr) return;
  int64_t n = 0;
  for (std::string_view t : texts) n += static_cast<int64_t>(token_counter->Count(t));
  usage.embedding_tokens += n;
}

bool ParseConsistency(std::string_view name, Consistency* out) {
  if (name == "eventual") {
    *out = Consistency::kEventual;
  } else if (name == "session") {
    *out = Consistency::kSession;
  } else if (name == "strong") {
    *out = Consistency::kStrong;
  } else {
    return false;
  }
  return true;
}

}  // namespace contextd
