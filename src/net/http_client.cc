#include "net/http_client.h"

#include <chrono>
#include <limits>
#include <optional>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace contextd {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::string ClientResponse::Header(const std::string& name) const { return FindHeader(headers, name); }

struct HttpClient::Impl {
  std::string host;
  int port;
  asio::io_context ioc;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;

  // Runs the queued asynchronous operations until they finish or `timeout_ms` passes
  // (0 = no limit). On timeout the connection is closed, which completes the operations
  // with an error; returns false then.
  bool RunFor(int64_t timeout_ms) {
    ioc.restart();
    if (timeout_ms <= 0) {
      ioc.run();
      return true;
    }
    ioc.run_for(std::chrono::milliseconds(timeout_ms));
    if (ioc.stopped()) return true;
    beast::error_code ignored;
    stream->socket().close(ignored);
    ioc.restart();
    ioc.run();
    return false;
  }

  Status Connect(int64_t timeout_ms) {
    // The first socket on `ioc` creates its reactor (three descriptors); at the descriptor
    // limit Asio throws, and callers on a worker thread must get a Status, not a terminate.
    try {
      stream.emplace(ioc);
    } catch (const std::exception& e) {
      stream.reset();
      return Unavailable("cannot connect to " + host + ":" + std::to_string(port) + ": " + e.what());
    }
    beast::error_code ec;
    tcp::resolver resolver(ioc);
    auto results = resolver.resolve(host, std::to_string(port), ec);
    if (!ec) {
      stream->async_connect(results, [&ec](beast::error_code e, const tcp::endpoint&) { ec = e; });
      if (!RunFor(timeout_ms)) ec = asio::error::timed_out;
    }
    if (ec) {
      stream.reset();
      return Unavailable("cannot connect to " + host + ":" + std::to_string(port) + ": " + ec.message());
    }
    stream->socket().set_option(tcp::no_delay(true), ec);
    buffer.clear();
    return Status::Ok();
  }

  static constexpr size_t kMaxFieldBytes = 65535;

  // Beast stores field offsets in 16 bits and throws past them; this data plane returns.
  static Status CheckHeaders(const HttpHeaders& headers) {
    for (const auto& [k, v] : headers) {
      if (k.size() > kMaxFieldBytes || v.size() > kMaxFieldBytes) {
        return InvalidArgument("header '" + k.substr(0, 64) + "' is too long to send (at most " +
                               std::to_string(kMaxFieldBytes) + " bytes per name or value)");
      }
    }
    return Status::Ok();
  }

  http::request<http::string_body> MakeRequest(const std::string& method, const std::string& target,
                                               const std::string& body, const HttpHeaders& headers) const {
    http::request<http::string_body> req(http::string_to_verb(method), target, 11);
    req.set(http::field::host, host);
    req.set(http::field::content_type, "application/json");
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.prepare_payload();
    req.keep_alive(true);
    return req;
  }

  // Connects when needed; returns what is left of `timeout_ms` (0: no limit).
  StatusOr<int64_t> Ready(int64_t timeout_ms) {
    const auto start = std::chrono::steady_clock::now();
    if (!stream) CTX_RETURN_IF_ERROR(Connect(timeout_ms));
    if (timeout_ms > 0) {
      timeout_ms -=
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
      timeout_ms = std::max<int64_t>(timeout_ms, 1);
    }
    return timeout_ms;
  }

  Status TimedOut(int64_t timeout_ms) {
    stream.reset();
    return DeadlineExceeded("request to " + host + ":" + std::to_string(port) + " timed out after " +
                            std::to_string(timeout_ms) + " ms");
  }

  // A kept-alive connection the server closed fails on first use; a fresh one may not.
  Status Broken(const beast::error_code& ec, bool* retryable) {
    *retryable = ec == http::error::end_of_stream || ec == asio::error::connection_reset ||
                 ec == asio::error::broken_pipe || ec == asio::error::eof;
    stream.reset();
    return Unavailable("request to " + host + ":" + std::to_string(port) + " failed: " + ec.message());
  }

  StatusOr<ClientResponse> Stream(const std::string& method, const std::string& target, const HttpHeaders& headers,
                                  const std::function<Status(std::string_view)>& sink, int64_t timeout_ms,
                                  bool* retryable) {
    *retryable = false;
    CTX_RETURN_IF_ERROR(CheckHeaders(headers));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    const auto left = [&]() -> int64_t {  // 0: no limit; at least 1 otherwise
      if (timeout_ms <= 0) return 0;
      return std::max<int64_t>(
          1,
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count());
    };
    CTX_RETURN_IF_ERROR(Ready(timeout_ms).status());
    auto req = MakeRequest(method, target, "", headers);
    beast::error_code ec;
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());  // the sink decides how much it takes
    http::async_write(*stream, req, [&](beast::error_code e, size_t) {
      ec = e;
      if (!e) http::async_read_header(*stream, buffer, parser, [&ec](beast::error_code e2, size_t) { ec = e2; });
    });
    if (!RunFor(left())) return TimedOut(timeout_ms);
    if (ec) return Broken(ec, retryable);
    ClientResponse out;
    out.status = static_cast<int>(parser.get().result_int());
    for (const auto& f : parser.get()) out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    const bool success = out.status / 100 == 2;
    constexpr size_t kErrorBodyBytes = 64 << 10;
    std::vector<char> piece(1 << 20);
    while (!parser.is_done()) {
      parser.get().body().data = piece.data();
      parser.get().body().size = piece.size();
      http::async_read(*stream, buffer, parser, [&ec](beast::error_code e, size_t) { ec = e; });
      if (!RunFor(left())) return TimedOut(timeout_ms);
      if (ec == http::error::need_buffer) ec = {};  // the piece is full: hand it on
      if (ec) {
        Status st = Broken(ec, retryable);
        *retryable = false;  // the reply had begun: a retry would feed the sink twice
        return st;
      }
      const std::string_view got(piece.data(), piece.size() - parser.get().body().size);
      if (success) {
        if (Status st = sink(got); !st.ok()) {
          stream.reset();  // the rest of the body is still coming: the connection is done
          return st;
        }
      } else if (out.body.size() < kErrorBodyBytes) {
        out.body.append(got.substr(0, kErrorBodyBytes - out.body.size()));
      }
    }
    if (!parser.get().keep_alive()) stream.reset();
    return out;
  }

  StatusOr<ClientResponse> Once(const std::string& method, const std::string& target, const std::string& body,
                                const HttpHeaders& headers, int64_t timeout_ms, bool* retryable) {
    *retryable = false;
    CTX_ASSIGN_OR_RETURN(timeout_ms, Ready(timeout_ms));
    CTX_RETURN_IF_ERROR(CheckHeaders(headers));
    auto req = MakeRequest(method, target, body, headers);
    beast::error_code ec;
    http::response_parser<http::string_body> parser;
    parser.body_limit(1ull << 32);
    parser.skip(req.method() == http::verb::head);  // its Content-Length describes a body not sent
    http::async_write(*stream, req, [&](beast::error_code e, size_t) {
      ec = e;
      if (!e) http::async_read(*stream, buffer, parser, [&ec](beast::error_code e2, size_t) { ec = e2; });
    });
    if (!RunFor(timeout_ms)) return TimedOut(timeout_ms);
    if (ec) return Broken(ec, retryable);
    auto& res = parser.get();
    ClientResponse out;
    out.status = static_cast<int>(res.result_int());
    out.body = std::move(res.body());
    for (const auto& f : res) out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    if (!res.keep_alive()) stream.reset();
    return out;
  }
};

HttpClient::HttpClient(std::string host, int port) : impl_(std::make_unique<Impl>()) {
  impl_->host = std::move(host);
  impl_->port = port;
}

HttpClient::~HttpClient() = default;

StatusOr<ClientResponse> HttpClient::Request(const std::string& method, const std::string& target,
                                             const std::string& body, const HttpHeaders& headers) {
  bool had_connection = impl_->stream.has_value();
  bool retryable = false;
  auto res = impl_->Once(method, target, body, headers, timeout_ms_, &retryable);
  if (!res.ok() && retryable && had_connection) {
    return impl_->Once(method, target, body, headers, timeout_ms_, &retryable);
  }
  return res;
}

StatusOr<ClientResponse> HttpClient::Stream(const std::string& method, const std::string& target,
                                            const HttpHeaders& headers,
                                            const std::function<Status(std::string_view)>& sink) {
  const bool had_connection = impl_->stream.has_value();
  bool retryable = false;
  auto res = impl_->Stream(method, target, headers, sink, timeout_ms_, &retryable);
  // Retried only when nothing reached the sink: a stale kept-alive connection fails
  // before any reply.
  if (!res.ok() && retryable && had_connection)
    return impl_->Stream(method, target, headers, sink, timeout_ms_, &retryable);
  return res;
}

Status ParseUrl(const std::string& url, std::string* host, int* port) {
  std::string rest = url;
  if (rest.rfind("http://", 0) == 0) rest = rest.substr(7);
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  size_t colon = rest.rfind(':');
  if (colon == std::string::npos) {
    *host = rest;
    *port = 80;
  } else {
    *host = rest.substr(0, colon);
    try {
      *port = std::stoi(rest.substr(colon + 1));
    } catch (...) {
      return InvalidArgument("bad port in URL '" + url + "'");
    }
  }
  if (host->empty()) return InvalidArgument("bad URL '" + url + "'; expected http://host:port");
  return Status::Ok();
}

std::string UrlEncode(const std::string& s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
        c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace contextd
