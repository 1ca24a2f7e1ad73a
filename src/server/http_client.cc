#include "server/http_client.h"

#include <strings.h>

#include <optional>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace contextd {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::string ClientResponse::Header(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (strcasecmp(k.c_str(), name.c_str()) == 0) return v;
  }
  return "";
}

struct HttpClient::Impl {
  std::string host;
  int port;
  asio::io_context ioc;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;

  Status Connect() {
    stream.emplace(ioc);
    beast::error_code ec;
    tcp::resolver resolver(ioc);
    auto results = resolver.resolve(host, std::to_string(port), ec);
    if (!ec) stream->connect(results, ec);
    if (ec) {
      stream.reset();
      return Unavailable("cannot connect to " + host + ":" + std::to_string(port) + ": " + ec.message());
    }
    stream->socket().set_option(tcp::no_delay(true), ec);
    buffer.clear();
    return Status::Ok();
  }

  StatusOr<ClientResponse> Once(const std::string& method, const std::string& target, const std::string& body,
                                const HttpHeaders& headers, bool* retryable) {
    *retryable = false;
    if (!stream) CTX_RETURN_IF_ERROR(Connect());
    http::request<http::string_body> req(http::string_to_verb(method), target, 11);
    req.set(http::field::host, host);
    req.set(http::field::content_type, "application/json");
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.prepare_payload();
    req.keep_alive(true);
    beast::error_code ec;
    http::write(*stream, req, ec);
    http::response_parser<http::string_body> parser;
    parser.body_limit(1ull << 32);
    if (!ec) http::read(*stream, buffer, parser, ec);
    if (ec) {
      // A kept-alive connection the server closed fails on first use; a fresh one may not.
      *retryable = ec == http::error::end_of_stream || ec == asio::error::connection_reset ||
                   ec == asio::error::broken_pipe || ec == asio::error::eof;
      stream.reset();
      return Unavailable("request to " + host + ":" + std::to_string(port) + " failed: " + ec.message());
    }
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
  auto res = impl_->Once(method, target, body, headers, &retryable);
  if (!res.ok() && retryable && had_connection) return impl_->Once(method, target, body, headers, &retryable);
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
