// Plain HTTP request/response values shared by the server, the API handlers and the client,
// so that only two .cc files ever include Boost.Beast.
#pragma once

#include <strings.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/mutex.h"

namespace contextd {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

// The value of the first header called `name` (in any case), or "" when there is none.
inline std::string FindHeader(const HttpHeaders& headers, std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() && strncasecmp(k.data(), name.data(), name.size()) == 0) return v;
  }
  return "";
}

struct HttpRequest {
  std::string method;  // "GET", "PUT", ...
  std::string path;    // percent-encoded, without the query string
  std::string query;   // after '?', may be empty
  std::string body;
  HttpHeaders headers;

  std::string Header(std::string_view name) const { return FindHeader(headers, name); }
};

// A response body that arrives in pieces (server-sent events): the handler writes pieces
// as they are ready and closes it; the server sends the head at once (chunked transfer
// encoding) and each piece as one chunk as soon as it can.
//
// Thread safety: Write() and Close() from the producing thread, Listen()/Take() from the
// server's; all synchronised here.
class HttpBodyChannel {
 public:
  // Queues a piece; false once the client is gone (Cancel()), so a producer can stop.
  bool Write(std::string piece) {
    std::function<void()> wake;
    {
      MutexLock lock(&mu_);
      if (cancelled_ || closed_) return false;
      queued_bytes_ += piece.size();
      pieces_.push_back(std::move(piece));
      wake = listener_;
    }
    if (wake) wake();
    return true;
  }
  // Blocks the producer until at most `max_bytes` wait to be sent (a client reading slower
  // than a file is read must not make the server hold the whole file), the client is gone
  // (false), or `timeout` passes with no room (false).
  bool WaitForRoom(size_t max_bytes, std::chrono::milliseconds timeout) {
    MutexLock lock(&mu_);
    return lock.WaitFor(taken_, timeout, [&]() NO_THREAD_SAFETY_ANALYSIS {
      return cancelled_ || queued_bytes_ <= max_bytes;
    }) && !cancelled_;
  }
  void Close() {
    std::function<void()> wake;
    {
      MutexLock lock(&mu_);
      closed_ = true;
      wake = listener_;
    }
    if (wake) wake();
  }

  // Server side. `wake` is called (from the producer's thread) after each Write/Close.
  void Listen(std::function<void()> wake) {
    MutexLock lock(&mu_);
    listener_ = std::move(wake);
  }
  // The next piece, or false with *closed set when there is none (yet, or ever).
  bool Take(std::string* piece, bool* closed) {
    MutexLock lock(&mu_);
    *closed = closed_;
    if (pieces_.empty()) return false;
    *piece = std::move(pieces_.front());
    pieces_.pop_front();
    queued_bytes_ -= piece->size();
    taken_.notify_all();
    return true;
  }
  // The connection failed: later writes are refused.
  void Cancel() {
    MutexLock lock(&mu_);
    cancelled_ = true;
    listener_ = nullptr;
    pieces_.clear();
    queued_bytes_ = 0;
    taken_.notify_all();
  }

 private:
  Mutex mu_;
  std::deque<std::string> pieces_ GUARDED_BY(mu_);
  size_t queued_bytes_ GUARDED_BY(mu_) = 0;
  std::condition_variable taken_;  // a piece was taken, or the client went
  std::function<void()> listener_ GUARDED_BY(mu_);
  bool closed_ GUARDED_BY(mu_) = false;
  bool cancelled_ GUARDED_BY(mu_) = false;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  HttpHeaders headers;
  // When set, the body comes from the channel instead of `body` (streamed, chunked).
  std::shared_ptr<HttpBodyChannel> channel;
};

// Hands a response back to the connection. Call exactly once, from any thread.
using Responder = std::function<void(HttpResponse)>;
// Handles one request. Runs on an I/O thread: anything slow must be moved elsewhere
// before it runs, and the responder called when done.
using HttpHandler = std::function<void(HttpRequest, Responder)>;

}  // namespace contextd
