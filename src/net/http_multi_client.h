// HttpMultiClient: many keep-alive HTTP/1.1 connections to one server, all driven by one
// thread (an epoll loop), for load generators. A thread per connection cannot offer
// thousands of requests a second on a small machine: the generator's own scheduling then
// becomes the latency it reports. Here a request waits only for a free connection.
//
// Thread safety: Connect, Submit, pending and Drain may be called from any thread;
// `done` callbacks run on the client's own thread, one at a time, and must not block.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "net/http.h"

namespace contextd {

struct MultiRequest {
  std::string method = "GET", target;
  std::string body;
  HttpHeaders headers;  // Host, Content-Length and Connection are set by the client
};

class HttpMultiClient {
 public:
  // The reply's status, or 0 when none came (no connection, broken, timed out).
  using Done = std::function<void(int status)>;

  // `timeout_ms` bounds each request from when it is written (0: no limit).
  HttpMultiClient(std::string host, int port, int connections, int64_t timeout_ms);
  ~HttpMultiClient();  // requests still queued are completed with status 0

  HttpMultiClient(const HttpMultiClient&) = delete;
  HttpMultiClient& operator=(const HttpMultiClient&) = delete;

  // Opens every connection and sends `probe_target` (GET) on each, so set-up is paid before
  // any measured request. Returns how many connections answered the probe.
  int Connect(const std::string& probe_target);
  // Sends on a free connection, or queues the request until one is free. A connection the
  // server closed is reopened; a reused one that fails before any reply is retried once on
  // a fresh connection (the server may close an idle keep-alive connection at any time).
  void Submit(MultiRequest request, Done done);
  // Requests submitted whose `done` has not run yet (queued or in flight).
  size_t pending() const;
  // Blocks until pending() is 0.
  void Drain();

 private:
  struct Rep;
  std::unique_ptr<Rep> rep_;
};

}  // namespace contextd
