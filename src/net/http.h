// Plain HTTP request/response values shared by the server, the API handlers and the client,
// so that only two .cc files ever include Boost.Beast.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace contextd {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method;  // "GET", "PUT", ...
  std::string path;    // percent-encoded, without the query string
  std::string query;   // after '?', may be empty
  std::string body;
  HttpHeaders headers;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  HttpHeaders headers;
};

// Hands a response back to the connection. Call exactly once, from any thread.
using Responder = std::function<void(HttpResponse)>;
// Handles one request. Runs on an I/O thread: anything slow must be moved elsewhere
// before it runs, and the responder called when done.
using HttpHandler = std::function<void(HttpRequest, Responder)>;

}  // namespace contextd
