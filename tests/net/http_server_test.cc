#include "net/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "net/http_client.h"

namespace contextd {
namespace {

class HttpServerTest : public ::testing::Test {
 protected:
  void Start(size_t max_body = 1 << 20, size_t max_connections = 0, size_t per_client = 1024,
             int header_timeout_ms = 10000) {
    HttpServerOptions o;
    o.header_timeout_ms = header_timeout_ms;
    o.port = 0;
    o.io_threads = 2;
    o.max_body_bytes = max_body;
    o.max_connections = max_connections;
    o.max_connections_per_client = per_client;
    o.max_body_bytes_in_flight = body_budget_;
    o.body_wait_ms = body_wait_ms_;
    if (io_threads_ > 0) o.io_threads = io_threads_;
    if (coalesce_interval_.count() > 0) {
      o.coalesce = [this] {
        std::lock_guard<std::mutex> lock(wakeups_mu_);
        if (overloaded_) wakeups_.push_back(std::chrono::steady_clock::now());
        ++asked_;
        return overloaded_ ? coalesce_interval_ : std::chrono::microseconds(0);
      };
    }
    server_ = std::make_unique<HttpServer>(o, [this](HttpRequest req, Responder respond) {
      ++calls_;
      if (req.path == "/x") last_x_call_ns_ = NowNs();
      HttpResponse res;
      res.body = req.method + " " + req.path + " ?" + req.query + " " + std::to_string(req.body.size());
      if (req.path == "/slow") {
        // Answers from another thread after slow_ms_: a request that outlives a Shutdown().
        std::thread([this, res, respond]() mutable {
          std::this_thread::sleep_for(std::chrono::milliseconds(slow_ms_));
          slow_answered_ns_ = NowNs();
          respond(std::move(res));
          ++late_replies_;
        }).detach();
        return;
      }
      if (req.path == "/big") {
        res.body.resize(5 << 20);
        for (size_t i = 0; i < res.body.size(); ++i) res.body[i] = static_cast<char>(i * 31 % 127);
      }
      if (req.path == "/missing") {
        res.status = 404;
        res.body = "nothing at /missing";
      }
      if (req.path == "/async") {
        // Respond from a thread that is not the connection's I/O thread.
        std::thread([res, respond]() mutable { respond(std::move(res)); }).detach();
        return;
      }
      respond(std::move(res));
    });
    ASSERT_TRUE(server_->Start().ok());
    ASSERT_GT(server_->port(), 0);
  }
  // A body's share is given back once its reply is written, which can be just after the
  // client has read it.
  void WaitForNoBodies() {
    for (int i = 0; i < 500 && server_->body_bytes_in_flight() != 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    EXPECT_EQ(server_->body_bytes_in_flight(), 0u);
  }
  // POST /slow with `body` from a thread, once its handler has started.
  std::thread SlowPostRunning(const std::string& body, StatusOr<ClientResponse>* reply) {
    const int port = server_->port();
    std::thread t([port, &body, reply] { *reply = HttpClient("127.0.0.1", port).Request("POST", "/slow", body); });
    while (calls_.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return t;
  }
  static int64_t NowNs() { return std::chrono::steady_clock::now().time_since_epoch().count(); }
  std::unique_ptr<HttpServer> server_;
  size_t body_budget_ = 0;
  int body_wait_ms_ = 30000;
  std::atomic<int64_t> last_x_call_ns_{0}, slow_answered_ns_{0};
  std::atomic<int> calls_{0};
  int slow_ms_ = 300;
  std::atomic<int> late_replies_{0};
  int io_threads_ = 0;                              // 0: the fixture's 2
  std::chrono::microseconds coalesce_interval_{0};  // what coalesce() answers while overloaded_; 0: unset
  std::atomic<bool> overloaded_{false};
  std::mutex wakeups_mu_;
  std::vector<std::chrono::steady_clock::time_point> wakeups_;  // coalesce() asked while overloaded_
  std::atomic<int> asked_{0};                                   // coalesce() asked at all
};

TEST_F(HttpServerTest, ServesManyRequestsOnOneKeepAliveConnection) {
  Start();
  HttpClient client("127.0.0.1", server_->port());
  for (int i = 0; i < 50; ++i) {
    auto r = client.Request("POST", "/x/y?a=1", "body");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "POST /x/y ?a=1 4");
    EXPECT_EQ(r->Header("server"), "contextd");
  }
  EXPECT_EQ(calls_.load(), 50);
}

TEST_F(HttpServerTest, ResponsesMayComeFromAnyThread) {
  Start();
  HttpClient client("127.0.0.1", server_->port());
  for (int i = 0; i < 20; ++i) {
    auto r = client.Get("/async");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->body, "GET /async ? 0");
  }
}

// While coalesce() answers an interval, an I/O thread handles what is ready and then waits out the
// coalescing interval before it looks again: four clients' requests, each sent as soon as
// the last reply came, are read and answered in rounds at least an interval apart, not one
// wake-up each; replies from other threads wait for the next round. Every request is still
// answered.
TEST_F(HttpServerTest, WhileOverloadedAnIoThreadWakesOncePerIntervalAndAnswersEverything) {
  io_threads_ = 1;
  coalesce_interval_ = std::chrono::milliseconds(200);
  overloaded_ = true;
  Start();
  constexpr int kClients = 4, kEach = 10;
  std::atomic<int> answered{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      HttpClient client("127.0.0.1", server_->port());
      for (int i = 0; i < kEach; ++i) {
        const std::string path = (c == 0 && i % 2 == 1) ? "/async" : "/x";
        auto r = client.Get(path);
        if (r.ok() && r->status == 200 && r->body == "GET " + path + " ? 0") ++answered;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(answered.load(), kClients * kEach);
  {
    std::lock_guard<std::mutex> lock(wakeups_mu_);
    ASSERT_GE(wakeups_.size(), 2u);
    // (The last round may be between its question and its count.)
    EXPECT_LE(server_->coalesced_waits(), wakeups_.size());
    EXPECT_GE(server_->coalesced_waits() + 1, wakeups_.size());
    EXPECT_LE(wakeups_.size(), static_cast<size_t>(kClients * kEach / 2)) << "rounds are shared by the clients";
    // A round is asked about as it begins, and the next one begins an interval after it;
    // half of it leaves room for a slow round on a loaded machine.
    for (size_t i = 1; i < wakeups_.size(); ++i) {
      EXPECT_GE(wakeups_[i] - wakeups_[i - 1], coalesce_interval_ / 2) << "round " << i;
    }
  }
  // Answered zero: no waiting, and the question is still asked on each wake-up. First the
  // last coalescing round must end: requests arriving during its poll() are served there,
  // with no wake-up to ask on (seen under ThreadSanitizer, which slows the client).
  overloaded_ = false;
  std::this_thread::sleep_for(2 * coalesce_interval_);
  const int before = asked_.load();
  HttpClient client("127.0.0.1", server_->port());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(client.Get("/x").ok());
  EXPECT_GT(asked_.load(), before);
}

TEST_F(HttpServerTest, OversizedBodiesGet413WithoutReachingTheHandler) {
  Start(1000);
  HttpClient client("127.0.0.1", server_->port());
  auto r = client.Request("POST", "/x", std::string(5000, 'a'));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 413);
  EXPECT_NE(r->body.find("body_too_large"), std::string::npos);
  EXPECT_EQ(calls_.load(), 0);
  // The server keeps serving.
  HttpClient again("127.0.0.1", server_->port());
  EXPECT_EQ(again.Request("POST", "/x", std::string(999, 'a'))->status, 200);
}

// Bodies beyond the budget wait, unread, until the ones in flight are answered: memory
// follows the budget, not the number of clients.
TEST_F(HttpServerTest, BodiesBeyondTheBudgetWaitForRoom) {
  body_budget_ = 200 * 1024;
  slow_ms_ = 800;  // the second request surely arrives while the first is running
  Start();
  const int port = server_->port();
  const std::string body(150 * 1024, 'a');
  StatusOr<ClientResponse> first = Unavailable("not sent");
  std::thread slow = SlowPostRunning(body, &first);
  EXPECT_EQ(server_->body_bytes_in_flight(), body.size());
  auto second = HttpClient("127.0.0.1", port).Request("POST", "/x", body);
  slow.join();
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first->status, 200);
  EXPECT_EQ(second->status, 200);
  EXPECT_EQ(second->body, "POST /x ? " + std::to_string(body.size()));
  EXPECT_GE(last_x_call_ns_.load(), slow_answered_ns_.load()) << "the second body was admitted while the first ran";
  EXPECT_EQ(server_->body_waits(), 1u);
  WaitForNoBodies();
  // Alone, a body larger than the whole budget still goes through; small ones never wait.
  EXPECT_EQ(HttpClient("127.0.0.1", port).Request("POST", "/x", std::string(300 * 1024, 'b'))->status, 200);
  EXPECT_EQ(HttpClient("127.0.0.1", port).Request("POST", "/x", "small")->status, 200);
  EXPECT_EQ(server_->body_waits(), 1u);
}

// A body that waits longer than body_wait_ms is turned away (503 overloaded, saying why)
// without reaching the handler.
TEST_F(HttpServerTest, ABodyThatWaitsTooLongIsTurnedAway) {
  body_budget_ = 200 * 1024;
  body_wait_ms_ = 100;
  slow_ms_ = 1500;
  Start();
  const int port = server_->port();
  const std::string body(150 * 1024, 'a');
  StatusOr<ClientResponse> first = Unavailable("not sent");
  std::thread slow = SlowPostRunning(body, &first);
  auto second = HttpClient("127.0.0.1", port).Request("POST", "/x", body);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->status, 503);
  EXPECT_NE(second->body.find("overloaded"), std::string::npos) << second->body;
  EXPECT_NE(second->body.find("bytes of request bodies are in flight"), std::string::npos) << second->body;
  EXPECT_FALSE(second->Header("retry-after").empty());
  EXPECT_EQ(calls_.load(), 1);
  slow.join();
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->status, 200);
  WaitForNoBodies();
}

TEST_F(HttpServerTest, LongUrisGet414AndLargeHeaders431) {
  Start();
  HttpClient client("127.0.0.1", server_->port());
  struct Case {
    std::string target;
    HttpHeaders headers;
    int status;
    const char* code;
  };
  HttpHeaders many;  // 8 x 10 KB: past the 64 KB limit (one value may not pass 64 KB)
  for (int i = 0; i < 8; ++i) many.emplace_back("X-Big-" + std::to_string(i), std::string(10 * 1024, 'h'));
  const std::vector<Case> cases = {
      {"/x?" + std::string(20 * 1024, 'q'), {}, 414, "uri_too_long"},  // past the URI limit
      {"/x?" + std::string(70 * 1024, 'q'), {}, 414, "uri_too_long"},  // past the header limit
      {"/x", many, 431, "header_too_large"},
  };
  for (const Case& c : cases) {
    HttpClient fresh("127.0.0.1", server_->port());
    auto r = fresh.Request("GET", c.target, "", c.headers);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, c.status) << c.code;
    EXPECT_NE(r->body.find(c.code), std::string::npos) << r->body;
  }
  EXPECT_EQ(calls_.load(), 0);
  // Just under the limits is served.
  auto ok = client.Request("GET", "/x?" + std::string(15 * 1024, 'q'), "", {{"X-Big", std::string(40 * 1024, 'h')}});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->status, 200);
}

// A raw connection to the server (an idle client), closed with the object.
struct RawConnection {
  explicit RawConnection(int port) {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    connected = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~RawConnection() { close(fd); }
  // What the server sent before closing, waiting at most `ms`; "" when it sent nothing.
  std::string ReadWithin(int ms) {
    timeval tv{ms / 1000, (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char buf[1024] = {};
    const ssize_t n = read(fd, buf, sizeof(buf) - 1);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }
  // True when the server closed the connection within `ms`.
  bool ClosedWithin(int ms) {
    timeval tv{ms / 1000, (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char c;
    return read(fd, &c, 1) == 0;
  }
  int fd = -1;
  bool connected = false;
};

TEST_F(HttpServerTest, OneClientAddressCannotHoldMoreThanItsShare) {
  Start(1 << 20, 0, /*per_client=*/4);
  std::vector<std::unique_ptr<RawConnection>> idle;
  for (int i = 0; i < 4; ++i) idle.push_back(std::make_unique<RawConnection>(server_->port()));
  RawConnection fifth(server_->port());
  ASSERT_TRUE(fifth.connected);
  const std::string reply = fifth.ReadWithin(2000);
  EXPECT_EQ(reply.rfind("HTTP/1.1 429", 0), 0u) << reply;
  EXPECT_NE(reply.find("too_many_connections"), std::string::npos) << reply;
  EXPECT_EQ(server_->connections_refused(), 1u);
  // Once one of them is gone, the address gets in again.
  idle.pop_back();
  for (int i = 0; i < 100; ++i) {
    HttpClient client("127.0.0.1", server_->port());
    auto r = client.Request("GET", "/x");
    if (r.ok() && r->status == 200) break;
    ASSERT_LT(i, 99) << "never admitted again";
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// A request whose headers trickle in is cut off at the header timeout; a connection that
// has sent nothing is idle, kept for the (longer) idle timeout; a request sent in pieces
// within the timeout is answered.
TEST_F(HttpServerTest, HeadersMustArriveWithinTheHeaderTimeout) {
  Start(1 << 20, 0, 1024, /*header_timeout_ms=*/600);
  RawConnection slow(server_->port()), quiet(server_->port()), pieces(server_->port());
  const std::string start = "GET /x HTTP/1.1\r\nHost: a\r\n";
  ASSERT_EQ(write(slow.fd, start.data(), start.size()), static_cast<ssize_t>(start.size()));
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 40 && !slow.ClosedWithin(100); ++i) {
    if (write(slow.fd, "X", 1) != 1) break;  // a header that never ends, a byte at a time
  }
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(took, std::chrono::milliseconds(3000)) << "the trickling client was not cut off";
  EXPECT_FALSE(quiet.ClosedWithin(1200)) << "an idle connection outlived the header timeout";
  for (const char* piece : {"GET /x HTTP/1.1\r\n", "Host: a\r\n", "\r\n"}) {
    ASSERT_GT(write(pieces.fd, piece, strlen(piece)), 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const std::string reply = pieces.ReadWithin(2000);
  EXPECT_EQ(reply.rfind("HTTP/1.1 200", 0), 0u) << reply;
  EXPECT_EQ(calls_.load(), 1) << "the trickled request never reached the handler";
}

TEST_F(HttpServerTest, AtTheConnectionCapTheLongestIdleMakesRoom) {
  Start(1 << 20, /*max_connections=*/4);
  std::vector<std::unique_ptr<RawConnection>> idle;
  for (int i = 0; i < 4; ++i) {
    idle.push_back(std::make_unique<RawConnection>(server_->port()));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // distinct idle ages
  }
  // A health check still gets in: the connection idle longest is closed for it.
  HttpClient client("127.0.0.1", server_->port());
  auto r = client.Request("GET", "/healthz");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(idle.front()->ClosedWithin(2000)) << "the oldest idle connection was closed";
  EXPECT_EQ(server_->idle_evictions(), 1u);
  EXPECT_EQ(server_->connections_refused(), 0u);
}

TEST_F(HttpServerTest, MalformedRequestsGet400) {
  Start();
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(server_->port()));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const char garbage[] = "THIS IS NOT HTTP\r\n\r\n";
  ASSERT_GT(write(fd, garbage, sizeof(garbage) - 1), 0);
  char buf[512] = {};
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf).rfind("HTTP/1.1 400", 0), 0u) << buf;
  EXPECT_EQ(calls_.load(), 0);
}

TEST_F(HttpServerTest, StopIsCleanWithOpenConnections) {
  Start();
  HttpClient client("127.0.0.1", server_->port());
  ASSERT_TRUE(client.Get("/").ok());
  server_->Stop();
  EXPECT_FALSE(client.Get("/").ok());
}

// RLIMIT_NOFILE bounds descriptor numbers, not their count: the limit that leaves exactly
// `room` descriptors free is one past the room-th unused number (the table may have holes).
rlim_t LimitLeavingRoomFor(int room) {
  int unused = 0;
  for (int fd = 0;; ++fd) {
    if (fcntl(fd, F_GETFD) == -1 && ++unused == room) return static_cast<rlim_t>(fd) + 1;
  }
}

// At the descriptor limit, accepts fail. The server must wait and retry (not spin: the old
// loop failed ~100k times a second), keep serving, and take the queued connections once
// descriptors are free again.
TEST_F(HttpServerTest, BacksOffWhenOutOfDescriptorsAndRecovers) {
  Start();
  constexpr int kClients = 6;
  int fds[kClients];
  for (int& fd : fds) {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    timeval timeout{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  }
  rlimit saved;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit low = saved;
  low.rlim_cur = LimitLeavingRoomFor(2);  // two accepted connections, and no more
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(server_->port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // The kernel completes the handshakes (the backlog); only the server's accepts fail.
  for (int fd : fds) ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const uint64_t errors = server_->accept_errors();
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
  EXPECT_GE(errors, 1u);
  // 100 ms between attempts: about 5 in the half second, where a retry loop makes ~50k.
  EXPECT_LE(errors, 50u);
  // Every connection is served once descriptors are back, with no client reconnecting.
  const std::string request = "GET /after HTTP/1.1\r\nHost: x\r\n\r\n";
  for (int fd : fds) {
    ASSERT_EQ(write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
    char buf[512];
    ssize_t n = read(fd, buf, sizeof(buf));
    ASSERT_GT(n, 0) << "a queued connection was never served";
    EXPECT_EQ(std::string(buf, static_cast<size_t>(n)).rfind("HTTP/1.1 200", 0), 0u);
    close(fd);
  }
}

// HEAD answers as GET would, without the body: the next response on the connection follows
// the head at once.
// A body streamed to a sink arrives whole, in pieces, never held at once; an error's body
// comes back as the reply's; a sink that refuses stops the transfer with its error, and
// the client then works for the next request.
TEST_F(HttpServerTest, AClientStreamsALargeBodyToItsSinkInPieces) {
  Start();
  HttpClient client("127.0.0.1", server_->port());
  std::string got;
  size_t pieces = 0, largest = 0;
  auto r = client.Stream("GET", "/big", {}, [&](std::string_view piece) {
    got.append(piece);
    ++pieces;
    largest = std::max(largest, piece.size());
    return Status::Ok();
  });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(r->body.empty());
  ASSERT_EQ(got.size(), 5u << 20);
  for (size_t i = 0; i < got.size(); i += 4099) ASSERT_EQ(got[i], static_cast<char>(i * 31 % 127)) << i;
  EXPECT_GE(pieces, 5u);
  EXPECT_LE(largest, 1u << 20);
  auto missing = client.Stream("GET", "/missing", {}, [&](std::string_view) {
    ADD_FAILURE() << "an error's body is not the sink's";
    return Status::Ok();
  });
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(missing->body, "nothing at /missing");
  size_t taken = 0;
  auto refused = client.Stream("GET", "/big", {}, [&](std::string_view piece) {
    taken += piece.size();
    return taken > (1u << 20) ? InvalidArgument("enough", "invalid_archive") : Status::Ok();
  });
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().reason(), "invalid_archive");
  EXPECT_LT(taken, 5u << 20);
  auto after = client.Get("/x");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->status, 200);
}

TEST_F(HttpServerTest, HeadIsGetWithoutTheBody) {
  Start();
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(server_->port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const std::string requests = "HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(write(fd, requests.data(), requests.size()), static_cast<ssize_t>(requests.size()));
  std::string got;
  char buf[4096];
  while (got.find("GET /after ?") == std::string::npos) {
    ssize_t n = read(fd, buf, sizeof(buf));
    ASSERT_GT(n, 0) << got;
    got.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  // The handler's body ("HEAD /h ? 0", 11 bytes) is counted but not sent.
  const size_t head_end = got.find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos);
  const std::string head = got.substr(0, head_end);
  EXPECT_EQ(head.rfind("HTTP/1.1 200", 0), 0u) << head;
  EXPECT_NE(head.find("Content-Length: 11"), std::string::npos) << head;
  EXPECT_EQ(got.compare(head_end + 4, 8, "HTTP/1.1"), 0) << "bytes between the HEAD reply and the next: " << got;
  EXPECT_EQ(calls_.load(), 2);
}

// Shutdown stops accepting at once, but a request already received gets its reply.
TEST_F(HttpServerTest, ShutdownLetsRequestsInFlightFinish) {
  Start();
  const int port = server_->port();
  StatusOr<ClientResponse> slow = Unavailable("not sent");
  std::thread caller([&] { slow = HttpClient("127.0.0.1", port).Get("/slow"); });
  while (calls_.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  size_t cut_off = 99;
  std::thread stopper([&] { cut_off = server_->Shutdown(std::chrono::seconds(10)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(HttpClient("127.0.0.1", port).Get("/new").ok()) << "accepted a connection while draining";
  stopper.join();
  caller.join();
  EXPECT_EQ(cut_off, 0u);
  ASSERT_TRUE(slow.ok()) << slow.status().ToString();
  EXPECT_EQ(slow->status, 200);
  EXPECT_EQ(slow->Header("connection"), "close");
}

// Past the grace period Shutdown gives up on a request; its late reply, from a thread the
// server never knew, is dropped rather than posted to a destroyed I/O context.
TEST_F(HttpServerTest, ShutdownCutsOffAfterTheGraceAndDropsLateReplies) {
  slow_ms_ = 400;
  Start();
  const int port = server_->port();
  std::thread caller([port] { (void)HttpClient("127.0.0.1", port).Get("/slow"); });
  while (calls_.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(server_->Shutdown(std::chrono::milliseconds(50)), 1u);
  server_.reset();
  caller.join();
  while (late_replies_.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

// A client's first connection creates its reactor; out of descriptors that must come back
// as an error (the embed workers call providers through this client), not a terminate.
TEST_F(HttpServerTest, ClientOutOfDescriptorsIsAnErrorNotACrash) {
  Start();
  HttpClient client("127.0.0.1", server_->port());
  rlimit saved;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit none = saved;
  none.rlim_cur = LimitLeavingRoomFor(1) - 1;  // not one descriptor free
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &none), 0);
  auto failed = client.Get("/");
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kUnavailable) << failed.status().ToString();
  auto r = client.Get("/later");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpServerTest, ClientRefusesAHeaderTooLongToSendInsteadOfThrowing) {
  Start();
  HttpClient client("127.0.0.1", server_->port());
  auto r = client.Request("GET", "/x", "", {{"X-Big", std::string(70 * 1024, 'h')}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("too long"), std::string::npos) << r.status().ToString();
  EXPECT_EQ(client.Request("GET", "/x")->status, 200) << "the client still works";
}

// A producer writing faster than its client reads is held back: at most max_bytes wait
// to be sent; a client that goes away frees it at once.
TEST(HttpBodyChannelTest, WaitForRoomBoundsWhatIsQueued) {
  HttpBodyChannel channel;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(channel.Write(std::string(1000, 'x')));
  EXPECT_FALSE(channel.WaitForRoom(1500, std::chrono::milliseconds(30))) << "3000 bytes queued";
  std::thread reader([&] {
    std::string piece;
    bool closed = false;
    for (int taken = 0; taken < 2;) {
      if (channel.Take(&piece, &closed)) {
        ++taken;
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
  });
  EXPECT_TRUE(channel.WaitForRoom(1500, std::chrono::seconds(10)));
  reader.join();
  ASSERT_TRUE(channel.Write(std::string(5000, 'y')));
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    channel.Cancel();
  });
  EXPECT_FALSE(channel.WaitForRoom(1500, std::chrono::seconds(10))) << "the client went away";
  canceller.join();
  EXPECT_FALSE(channel.Write("late"));
}

TEST(HttpClientTest, UrlHelpers) {
  std::string host;
  int port;
  ASSERT_TRUE(ParseUrl("http://127.0.0.1:8080/", &host, &port).ok());
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, 8080);
  EXPECT_FALSE(ParseUrl("http://:x", &host, &port).ok());
  EXPECT_EQ(UrlEncode("a b/ü"), "a%20b%2F%C3%BC");
}

}  // namespace
}  // namespace contextd
