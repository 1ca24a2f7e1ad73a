// HttpServer: asynchronous HTTP/1.1 with keep-alive on Boost.Beast.
//
// One io_context per I/O thread; the acceptor deals connections out round-robin, so a
// connection lives on one thread and needs no locking. Bodies over max_body_bytes get 413
// and malformed requests 400 before the handler sees them.
//
// Thread safety: Start() and Stop() from one controlling thread; the handler is called
// concurrently from every I/O thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "net/http.h"

namespace contextd {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;     // 0 picks a free port; see HttpServer::port()
  int io_threads = 0;  // 0 = one per core
  size_t max_body_bytes = 64 << 20;
  int idle_timeout_s = 120;  // closes connections idle this long
  // Once a request's first bytes arrived, all its headers must within this (nginx's
  // client_header_timeout, Envoy's request_headers_timeout): a client trickling them is
  // disconnected here, not after the idle timeout.
  int header_timeout_ms = 10000;
  // Connections one client address may hold; more are answered 429 and closed, so one
  // client cannot take every descriptor.
  size_t max_connections_per_client = 1024;
  // Connections in all; 0: the descriptor limit less kReservedDescriptors (RocksDB's files,
  // provider connections). At the cap the longest-idle keep-alive connection is closed to
  // admit the new one, so health checks get in; when none is idle, 503 and close.
  size_t max_connections = 0;
  // Request bodies being read or answered, in bytes: peak memory follows them (a write's
  // copies of its body, parsed, chunked, batched, come to 15-20x it). A request whose
  // Content-Length would take the total past this waits before its body is read (TCP
  // pushes back on the client), for up to body_wait_ms, then gets 503 overloaded; one
  // request alone is always admitted, so any body up to max_body_bytes can be sent. Only
  // bodies of 64 KiB or more count; a chunked body counts once read. 0: 4 x max_body_bytes.
  size_t max_body_bytes_in_flight = 0;
  int body_wait_ms = 30000;
  // After a failed accept (out of file descriptors, say), wait this long before accepting
  // again; the kernel's backlog holds the waiting connections meanwhile.
  int accept_retry_ms = 100;
  // Wake-up coalescing under overload (interrupt moderation, as NICs do it): after each
  // event it handles, an I/O thread asks `coalesce` how long to leave between wake-ups;
  // given more than zero, it handles everything else ready and then waits until that long
  // after it woke before it looks again, so it takes the core from the request workers once per interval
  // instead of once per arriving request or reply. At ten times capacity an I/O thread
  // woke for each of ~4,000 requests a second, two context switches each, preempting the
  // search workers mid-query (BENCHMARKS, issue 20, session 29). Unset: it wakes for every
  // event. Called on the I/O threads once per event handled: keep it cheap, and thread-safe.
  std::function<std::chrono::microseconds()> coalesce;
};

class HttpServer {
 public:
  static constexpr size_t kReservedDescriptors = 256;

  HttpServer(HttpServerOptions options, HttpHandler handler);
  ~HttpServer();  // stops

  // Binds and starts serving. Fails when the address cannot be bound.
  Status Start();
  // The bound port (useful with port 0). REQUIRES: Start() succeeded.
  int port() const;
  // Stops accepting, closes connections and joins the I/O threads.
  void Stop();
  // A graceful Stop(), for rolling restarts: stops accepting at once, lets the requests
  // already received finish and their replies go out (each with Connection: close, so
  // clients reconnect elsewhere), then Stop()s once none is left or `grace` has passed.
  // Returns how many requests were still unanswered when it gave up.
  size_t Shutdown(std::chrono::milliseconds grace);
  // Accepts that failed (each is followed by accept_retry_ms of waiting).
  uint64_t accept_errors() const;
  // Connections refused (per-client cap, or all busy at the cap) and idle ones closed to
  // make room.
  uint64_t connections_refused() const;
  uint64_t idle_evictions() const;
  // Times an I/O thread waited out a coalescing interval (see coalesce).
  uint64_t coalesced_waits() const;
  // Bytes of request bodies admitted and not yet answered, and requests that had to wait
  // for them (see max_body_bytes_in_flight).
  size_t body_bytes_in_flight() const;
  uint64_t body_waits() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace contextd
