// --log-format json: one JSON object per log line, for log shippers.
#include <spdlog/pattern_formatter.h>
#include <spdlog/spdlog.h>

#include "cli/commands.h"
#include "common/json.h"

namespace contextd {

namespace {

// %* in the pattern: the message as a JSON string (quotes included), escaped.
class JsonMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    std::string quoted;
    AppendJsonString(std::string_view(msg.payload.data(), msg.payload.size()), &quoted);
    dest.append(quoted.data(), quoted.data() + quoted.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<JsonMessageFlag>(); }
};

}  // namespace

void UseJsonLogs() {
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  formatter->add_flag<JsonMessageFlag>('*').set_pattern(
      R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","logger":"%n","msg":%*})");
  spdlog::set_formatter(std::move(formatter));
}

}  // namespace contextd
