// HttpClient: a small blocking HTTP/1.1 client with one keep-alive connection, for remote
// embedding providers, the CLI, the tests and the benchmarks. Reconnects once when the
// server closed an idle connection.
//
// Thread safety: none; use one client per thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "net/http.h"

namespace contextd {

struct ClientResponse {
  int status = 0;
  std::string body;
  HttpHeaders headers;
  std::string Header(const std::string& name) const;  // case-insensitive; "" when absent
};

class HttpClient {
 public:
  HttpClient(std::string host, int port);
  ~HttpClient();

  // Unavailable when the server cannot be reached or the connection breaks.
  StatusOr<ClientResponse> Request(const std::string& method, const std::string& target, const std::string& body = "",
                                   const HttpHeaders& headers = {});
  // As Request, but a 2xx reply's body goes to `sink` a piece at a time as it arrives (up
  // to 1 MiB each), so a body of any size (a replica's seed) is never held whole; the
  // returned body is then empty. Another status's body (an error's message) is returned,
  // its first 64 KiB. A sink error stops the transfer (the connection is closed) and is
  // returned.
  StatusOr<ClientResponse> Stream(const std::string& method, const std::string& target, const HttpHeaders& headers,
                                  const std::function<Status(std::string_view)>& sink);
  // Limits each later request (connect, write and read together) to `ms`; 0 = no limit.
  // A request that runs out gets DeadlineExceeded and the connection is closed.
  void set_timeout_ms(int64_t ms) { timeout_ms_ = ms; }

  StatusOr<ClientResponse> Get(const std::string& target) { return Request("GET", target); }
  StatusOr<ClientResponse> Post(const std::string& target, const std::string& body) {
    return Request("POST", target, body);
  }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int64_t timeout_ms_ = 0;
};

// Splits "http://host:port" into its parts; InvalidArgument otherwise.
Status ParseUrl(const std::string& url, std::string* host, int* port);

// Percent-encodes one path segment.
std::string UrlEncode(const std::string& s);

}  // namespace contextd
