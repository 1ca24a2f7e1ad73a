#include "net/http_server.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <sys/resource.h>

#include <spdlog/spdlog.h>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "common/cores.h"
#include "common/mutex.h"
#include "net/http_status.h"

namespace contextd {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

class Session;

// What sessions share with the server, and may outlive it with (a handler's pool can hold
// the last reference to a session): how many requests are being answered, whether the
// server is draining, and whether it has stopped, after which its contexts are gone.
struct ServerState {
  std::atomic<size_t> in_flight{0};
  std::atomic<size_t> body_bytes{0};  // see HttpServerOptions::max_body_bytes_in_flight
  std::atomic<uint64_t> body_waits{0};
  size_t body_budget = 0;  // set before the first session

  // Takes `bytes` of the body budget unless that would overrun it with other bodies in
  // flight (one alone always fits).
  bool TryReserveBody(size_t bytes) {
    size_t held = body_bytes.load();
    do {
      if (held > 0 && held + bytes > body_budget) return false;
    } while (!body_bytes.compare_exchange_weak(held, held + bytes));
    return true;
  }
  std::atomic<bool> draining{false};
  Mutex mu;  // held to post to a context, and by Stop() to set `stopped`
  bool stopped GUARDED_BY(mu) = false;
  std::unordered_set<Session*> sessions GUARDED_BY(mu);               // every live session
  std::unordered_map<std::string, size_t> per_client GUARDED_BY(mu);  // sessions by address
};

// The request line and headers together, and the URI alone (as nginx and Envoy bound
// them: far above any real client's, far below what would cost memory).
constexpr uint32_t kMaxHeaderBytes = 64 * 1024;
constexpr size_t kMaxTargetBytes = 16 * 1024;
// The first read of a request: enough for most requests whole.
constexpr size_t kFirstReadBytes = 16 * 1024;
// Smaller bodies are not counted against the body budget: their copies are small, and
// counting them would put an atomic on every request's path.
constexpr size_t kCountedBodyBytes = 64 * 1024;
// After a body at least this large the connection's read buffer is freed, not kept for the
// next request on the connection.
constexpr size_t kResetBufferAfterBodyBytes = 256 << 10;
// How often a request waiting for the body budget looks again.
constexpr int kBodyWaitStepMs = 10;

// The context whose thread this is: replies from there are written inline. A plain pointer
// compared, never dereferenced, so a late reply from another thread cannot touch a
// destroyed context.
thread_local const asio::io_context* t_io_context = nullptr;

class Session : public std::enable_shared_from_this<Session> {
 public:
  // REQUIRES: state->mu held (the accept path counts and registers in one step).
  Session(tcp::socket socket, std::string client, asio::io_context* ioc, const HttpServerOptions* options,
          const HttpHandler* handler, std::shared_ptr<ServerState> state)
      : stream_(std::in_place, std::move(socket)),
        client_(std::move(client)),
        ioc_(ioc),
        options_(options),
        handler_(handler),
        state_(std::move(state)) {
    beast::error_code ec;
    stream_->socket().set_option(tcp::no_delay(true), ec);
    state_->sessions.insert(this);
    ++state_->per_client[client_];
  }
  // Under the lock, so that Stop() either closed this socket already or runs after it is gone.
  ~Session() {
    Answered();
    MutexLock lock(&state_->mu);
    state_->sessions.erase(this);
    if (auto it = state_->per_client.find(client_); it != state_->per_client.end() && --it->second == 0) {
      state_->per_client.erase(it);
    }
    stream_.reset();
  }

  // When this connection started waiting for its next request (monotonic ns); 0 while a
  // request is being read or answered.
  int64_t idle_since_ns() const { return idle_since_ns_.load(std::memory_order_relaxed); }
  asio::io_context* ioc() const { return ioc_; }
  // On this session's I/O thread: closes the connection if it is still idle.
  void CloseIfIdle() {
    if (idle_since_ns() != 0 && stream_) Close();
  }

  // Stop(), with the I/O threads joined and state_->mu held: destroys the socket now, while
  // its context exists. A handler's pool may still hold this session, and drop it later.
  void CloseForStop() {
    body_timer_.reset();
    stream_.reset();
  }

  void Start() { DoRead(); }

 private:
  // A request is read in three steps, each with its own deadline: waiting for its first
  // bytes is keep-alive idleness (idle_timeout_s, long); once it has begun, its headers
  // must all arrive within header_timeout_s (a client trickling them a byte at a time, a
  // slowloris, is cut off there instead of holding the connection for the idle timeout);
  // the body then gets idle_timeout_s.
  void DoRead() {
    idle_since_ns_ = std::chrono::steady_clock::now().time_since_epoch().count();
    parser_.emplace();
    parser_->body_limit(options_->max_body_bytes);
    parser_->header_limit(kMaxHeaderBytes);
    if (buffer_.size() > 0) return ReadHeader();  // a pipelined request is here already
    stream_->expires_after(std::chrono::seconds(options_->idle_timeout_s));
    stream_->async_read_some(buffer_.prepare(kFirstReadBytes),
                             [self = shared_from_this()](beast::error_code ec, size_t n) {
                               if (ec) return self->OnRead(ec);
                               self->buffer_.commit(n);
                               self->ReadHeader();
                             });
  }

  void ReadHeader() {
    idle_since_ns_ = 0;  // a request has begun: not a keep-alive connection to evict
    stream_->expires_after(std::chrono::milliseconds(options_->header_timeout_ms));
    http::async_read_header(*stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->OnRead(ec);
      const auto length = self->parser_->content_length();
      if (length && *length >= kCountedBodyBytes) return self->ReserveBody(*length, 0);
      self->ReadBody();
    });
  }

  void ReadBody() {
    stream_->expires_after(std::chrono::seconds(options_->idle_timeout_s));
    http::async_read(*stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  // Reads the body once the body budget has room for it; until then the body stays in the
  // client's socket, so the client is slowed rather than the server's memory grown.
  void ReserveBody(size_t bytes, int waited_ms) {
    if (state_->TryReserveBody(bytes)) {
      body_reserved_ = bytes;
      return ReadBody();
    }
    if (waited_ms == 0) state_->body_waits.fetch_add(1);
    if (waited_ms >= options_->body_wait_ms || state_->draining.load()) {
      keep_alive_ = false;  // the body was not read
      return Write(ErrorResponse(Unavailable(
          "overloaded: " + std::to_string(state_->body_bytes.load()) + " bytes of request bodies are in flight (the " +
              "limit is " + std::to_string(state_->body_budget) + "); this " + std::to_string(bytes) +
              "-byte body waited " + std::to_string(waited_ms) + " ms; retry shortly or on another node",
          "overloaded")));
    }
    stream_->expires_never();
    if (!body_timer_) body_timer_.emplace(*ioc_);
    body_timer_->expires_after(std::chrono::milliseconds(kBodyWaitStepMs));
    body_timer_->async_wait([self = shared_from_this(), bytes, waited_ms](beast::error_code ec) {
      if (ec || !self->stream_) return;
      self->ReserveBody(bytes, waited_ms + kBodyWaitStepMs);
    });
  }

  void ReleaseBody() {
    if (body_reserved_ == 0) return;
    const size_t released = body_reserved_;
    body_reserved_ = 0;
    // The read buffer grew to hold the body; keep-alive would keep it that size. (What the
    // request freed goes back to the kernel through contextd's FreeMemoryReleaser.)
    if (released >= kResetBufferAfterBodyBytes && buffer_.size() == 0) buffer_ = beast::flat_buffer();
    state_->body_bytes.fetch_sub(released);
  }

  void OnRead(beast::error_code ec) {
    idle_since_ns_ = 0;
    if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset) {
      return Close();
    }
    if (ec == http::error::body_limit) {
      keep_alive_ = false;
      return Write(ErrorResponse(
          ResourceExhausted("request body exceeds the limit of " + std::to_string(options_->max_body_bytes) + " bytes",
                            "body_too_large")));
    }
    if (ec == http::error::header_limit) {
      // The request line and the headers share one limit; a request line that alone does
      // not fit is a URI too long (414), anything else too many header bytes (431).
      keep_alive_ = false;
      const auto seen = buffer_.data();
      const std::string_view bytes(static_cast<const char*>(seen.data()), seen.size());
      if (bytes.find("\r\n") == std::string_view::npos) {
        return Write(ErrorResponse(InvalidArgument(
            "the request line is longer than the limit of " + std::to_string(kMaxHeaderBytes) + " bytes",
            "uri_too_long")));
      }
      return Write(ErrorResponse(
          InvalidArgument("the request's headers exceed the limit of " + std::to_string(kMaxHeaderBytes) + " bytes",
                          "header_too_large")));
    }
    if (ec) {
      keep_alive_ = false;
      return Write(ErrorResponse(InvalidArgument("malformed HTTP request: " + ec.message(), "bad_request")));
    }
    auto& msg = parser_->get();
    if (msg.target().size() > kMaxTargetBytes) {
      keep_alive_ = false;
      return Write(ErrorResponse(InvalidArgument(
          "the URI is " + std::to_string(msg.target().size()) + " bytes; at most " + std::to_string(kMaxTargetBytes),
          "uri_too_long")));
    }
    keep_alive_ = msg.keep_alive();
    HttpRequest req;
    // A HEAD reply is the GET reply without its body (RFC 9110): whatever body the handler
    // gives, Write() sends only its length.
    head_only_ = msg.method() == http::verb::head;
    req.method = std::string(msg.method_string());
    std::string_view target(msg.target().data(), msg.target().size());
    size_t q = target.find('?');
    req.path = std::string(target.substr(0, q));
    if (q != std::string_view::npos) req.query = std::string(target.substr(q + 1));
    req.body = std::move(msg.body());
    if (body_reserved_ == 0 && req.body.size() >= kCountedBodyBytes) {
      // Chunked: its size is known only now. Counted, not refused (it is read already), so
      // the bodies after it wait.
      body_reserved_ = req.body.size();
      state_->body_bytes.fetch_add(body_reserved_);
    }
    for (const auto& field : msg) {
      req.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    stream_->expires_never();  // the handler may take a while; the deadline is its business
    answering_ = true;
    state_->in_flight.fetch_add(1);
    (*handler_)(std::move(req), [self = shared_from_this()](HttpResponse res) {
      if (t_io_context == self->ioc_) return self->Write(std::move(res));
      self->Post([self, res = std::move(res)]() mutable { self->Write(std::move(res)); });
    });
  }

  // Runs `fn` on this session's I/O thread, unless the server has stopped: then its
  // contexts are gone and the client with them.
  template <class Fn>
  void Post(Fn fn) {
    MutexLock lock(&state_->mu);
    if (!state_->stopped) asio::post(*ioc_, std::move(fn));
  }

  // Status, the server's and the response's headers and keep-alive: what a plain and a
  // streamed response's head share.
  template <class Body>
  void SetHead(const HttpResponse& res, http::response<Body>* head) const {
    head->version(11);
    head->result(static_cast<http::status>(res.status));
    head->set(http::field::server, "contextd");
    head->set(http::field::content_type, res.content_type);
    for (const auto& [k, v] : res.headers) head->set(k, v);
    head->keep_alive(keep_alive_);
  }

  // The reply to the request being answered is out (or the connection failed).
  void Answered() {
    ReleaseBody();  // also for a request refused before it was answered
    if (!answering_) return;
    answering_ = false;
    state_->in_flight.fetch_sub(1);
  }

  void Write(HttpResponse res) {
    if (state_->draining.load()) keep_alive_ = false;  // the client should reconnect elsewhere
    if (res.channel != nullptr && !head_only_) return WriteStreamed(std::move(res));
    if (res.channel != nullptr) res.channel->Cancel();  // HEAD of a stream: the head, no pieces
    res_.emplace();
    SetHead(res, &*res_);
    if (head_only_) {
      // The Content-Length a GET would get; the body stays empty.
      res_->content_length(res.channel != nullptr ? 0 : res.body.size());
    } else {
      res_->body() = std::move(res.body);
      res_->prepare_payload();
    }
    stream_->expires_after(std::chrono::seconds(options_->idle_timeout_s));
    http::async_write(*stream_, *res_, [self = shared_from_this()](beast::error_code ec, size_t) {
      self->Answered();
      if (ec || !self->keep_alive_) return self->Close();
      self->DoRead();
    });
  }

  // The head now (chunked), then each piece of the channel as one chunk as it arrives.
  void WriteStreamed(HttpResponse res) {
    channel_ = std::move(res.channel);
    head_.emplace();
    head_->set(http::field::cache_control, "no-cache");
    SetHead(res, &*head_);
    head_->chunked(true);
    head_serializer_.emplace(*head_);
    stream_->expires_never();  // the producer paces the body
    http::async_write_header(*stream_, *head_serializer_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) {
        self->channel_->Cancel();
        self->Answered();
        return self->Close();
      }
      std::weak_ptr<Session> weak = self;
      self->channel_->Listen([weak] {
        if (auto s = weak.lock()) s->Post([s] { s->Drain(); });
      });
      self->Drain();
    });
  }

  // Writes the next piece (one at a time), or the last chunk once the channel is closed.
  void Drain() {
    if (chunk_writing_ || channel_ == nullptr) return;
    bool closed = false;
    if (channel_->Take(&chunk_text_, &closed)) {
      chunk_writing_ = true;
      chunk_.emplace(asio::const_buffer(chunk_text_.data(), chunk_text_.size()));
      asio::async_write(*stream_, *chunk_, [self = shared_from_this()](beast::error_code ec, size_t) {
        self->chunk_writing_ = false;
        if (ec) {
          self->channel_->Cancel();
          self->Answered();
          return self->Close();
        }
        self->Drain();
      });
      return;
    }
    if (!closed) return;  // woken again by the next Write/Close
    chunk_writing_ = true;
    asio::async_write(*stream_, http::make_chunk_last(), [self = shared_from_this()](beast::error_code ec, size_t) {
      self->chunk_writing_ = false;
      self->channel_->Listen(nullptr);
      self->channel_.reset();
      self->Answered();
      if (ec || !self->keep_alive_) return self->Close();
      self->DoRead();
    });
  }

  void Close() {
    beast::error_code ec;
    stream_->socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_->close();
  }

  // Reset by CloseForStop(): the socket must be destroyed while its context still exists.
  std::optional<beast::tcp_stream> stream_;
  const std::string client_;  // the peer's address, for the per-client cap
  std::atomic<int64_t> idle_since_ns_{0};
  asio::io_context* ioc_;
  const HttpServerOptions* options_;
  const HttpHandler* handler_;
  std::shared_ptr<ServerState> state_;
  bool answering_ = false;                        // counted in state_->in_flight until Answered()
  size_t body_reserved_ = 0;                      // of state_->body_bytes, until Answered()
  std::optional<asio::steady_timer> body_timer_;  // a body waiting for the budget
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> res_;
  bool keep_alive_ = true;
  bool head_only_ = false;  // the request being answered is a HEAD
  // A streamed response (see WriteStreamed()).
  std::shared_ptr<HttpBodyChannel> channel_;
  std::optional<http::response<http::empty_body>> head_;
  std::optional<http::response_serializer<http::empty_body>> head_serializer_;
  std::string chunk_text_;
  std::optional<http::chunk_body<asio::const_buffer>> chunk_;
  bool chunk_writing_ = false;
};

// An I/O thread's loop: ctx->run(), with wake-ups coalesced while `coalesce` asks for it.
void RunIoThread(asio::io_context* ctx, const HttpServerOptions& options, std::atomic<uint64_t>* waits) {
  if (!options.coalesce) {
    ctx->run();
    return;
  }
  // One handler at a time while nothing is shed, as run() would: poll() after each would
  // add a non-blocking epoll_wait to every wake-up.
  while (ctx->run_one() > 0) {  // 0: stopped
    const std::chrono::microseconds interval = options.coalesce();
    if (interval.count() <= 0) continue;
    const auto woke = std::chrono::steady_clock::now();
    ctx->poll();  // everything else ready, and what becomes ready meanwhile
    waits->fetch_add(1, std::memory_order_relaxed);
    std::this_thread::sleep_until(woke + interval);
  }
}

}  // namespace

struct HttpServer::Impl {
  HttpServerOptions options;
  HttpHandler handler;
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::unique_ptr<asio::steady_timer> accept_retry;  // on the acceptor's context
  std::vector<std::thread> threads;
  std::atomic<size_t> next{0};
  std::atomic<uint64_t> accept_errors{0};
  std::shared_ptr<ServerState> state = std::make_shared<ServerState>();
  std::chrono::steady_clock::time_point last_accept_warning{};  // the acceptor's context only
  int port = 0;
  bool running = false;
  size_t max_connections = 0;  // resolved from the options in Start()
  std::atomic<uint64_t> refused{0};
  std::atomic<uint64_t> evicted{0};
  std::atomic<uint64_t> coalesced_waits{0};

  // Writes the error reply of `why` on a connection that will not get a session, then drops
  // it. The socket is fresh, so the few bytes fit its send buffer: the write does not block.
  static void Refuse(tcp::socket& socket, const Status& why) {
    const HttpResponse res = ErrorResponse(why);
    std::string text = "HTTP/1.1 " + std::to_string(res.status) + " " +
                       std::string(http::obsolete_reason(static_cast<http::status>(res.status))) +
                       "\r\nContent-Type: application/json\r\nConnection: close\r\n";
    for (const auto& [k, v] : res.headers) text += k + ": " + v + "\r\n";
    text += "Content-Length: " + std::to_string(res.body.size()) + "\r\n\r\n" + res.body;
    beast::error_code ec;
    asio::write(socket, asio::buffer(text), ec);
    socket.shutdown(tcp::socket::shutdown_both, ec);
    socket.close(ec);
  }

  // Applies the connection caps to an accepted socket: a session, or a refusal.
  void Admit(tcp::socket socket, asio::io_context* target) {
    beast::error_code ec;
    const auto remote = socket.remote_endpoint(ec);
    const std::string client = ec ? std::string("?") : remote.address().to_string();
    std::shared_ptr<Session> evict;
    {
      MutexLock lock(&state->mu);
      auto it = state->per_client.find(client);
      if (it != state->per_client.end() && it->second >= options.max_connections_per_client) {
        ++refused;
        return Refuse(socket,
                      ResourceExhausted("this address already holds " + std::to_string(it->second) + " connections",
                                        "too_many_connections"));
      }
      if (state->sessions.size() >= max_connections) {
        // Make room by closing the connection idle longest; a live request is never cut.
        Session* oldest = nullptr;
        for (Session* s : state->sessions) {
          const int64_t since = s->idle_since_ns();
          if (since != 0 && (oldest == nullptr || since < oldest->idle_since_ns())) oldest = s;
        }
        if (oldest != nullptr) evict = oldest->weak_from_this().lock();
        if (evict == nullptr) {
          ++refused;
          return Refuse(socket, Unavailable("all " + std::to_string(state->sessions.size()) + " connections are busy",
                                            "server_busy"));
        }
      }
      auto session = std::make_shared<Session>(std::move(socket), client, target, &options, &handler, state);
      // Moved into the handler: were the last reference dropped here, ~Session would take
      // state->mu while it is held.
      asio::post(*target, [session = std::move(session)] { session->Start(); });
    }
    if (evict != nullptr) {
      ++evicted;
      asio::post(*evict->ioc(), [evict] { evict->CloseIfIdle(); });
    }
  }

  void Accept() {
    asio::io_context& target = *contexts[next++ % contexts.size()];
    acceptor->async_accept(target, [this, &target](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) {
        Admit(std::move(socket), &target);
        return Accept();
      }
      // Out of descriptors or memory (EMFILE, ENFILE, ENOBUFS), accepting again at once
      // fails again at once: a busy loop that wrote 400k log lines in 3 s at the fd limit.
      // Wait instead, and warn at most once a second.
      const uint64_t errors = ++accept_errors;
      const auto now = std::chrono::steady_clock::now();
      if (now - last_accept_warning >= std::chrono::seconds(1)) {
        last_accept_warning = now;
        spdlog::warn("accept failed: {} ({} failures so far); accepting again in {} ms", ec.message(), errors,
                     options.accept_retry_ms);
      }
      accept_retry->expires_after(std::chrono::milliseconds(options.accept_retry_ms));
      accept_retry->async_wait([this](beast::error_code wait_ec) {
        if (!wait_ec) Accept();
      });
    });
  }
};

HttpServer::HttpServer(HttpServerOptions options, HttpHandler handler) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->handler = std::move(handler);
}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Start() {
  auto& im = *impl_;
  int n = im.options.io_threads > 0 ? im.options.io_threads : UsableCores();
  for (int i = 0; i < n; ++i) {
    im.contexts.push_back(std::make_unique<asio::io_context>(1));
    im.guards.push_back(asio::make_work_guard(*im.contexts.back()));
    // Asio creates a context's reactor (an epoll, an eventfd and a timerfd) with the first
    // socket placed on it, which is otherwise an accepted connection: at the descriptor
    // limit that throws out of the accept handler and takes the process down. Creating it
    // here, where a failure is a Status, leaves accepts needing one descriptor each.
    try {
      tcp::socket reactor_probe(*im.contexts.back());
    } catch (const std::exception& e) {
      return Unavailable(std::string("cannot create the I/O reactor: ") + e.what(), "io_setup_failed");
    }
  }
  beast::error_code ec;
  auto address = asio::ip::make_address(im.options.host, ec);
  if (ec) return InvalidArgument("invalid host '" + im.options.host + "': " + ec.message());
  tcp::endpoint endpoint(address, static_cast<unsigned short>(im.options.port));
  im.acceptor = std::make_unique<tcp::acceptor>(*im.contexts[0]);
  im.acceptor->open(endpoint.protocol(), ec);
  if (!ec) im.acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) im.acceptor->bind(endpoint, ec);
  if (!ec) im.acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Unavailable(
        "cannot listen on " + im.options.host + ":" + std::to_string(im.options.port) + ": " + ec.message(),
        "bind_failed");
  }
  im.port = im.acceptor->local_endpoint().port();
  im.max_connections = im.options.max_connections;
  if (im.max_connections == 0) {
    rlimit limit{};
    getrlimit(RLIMIT_NOFILE, &limit);
    const size_t fds = limit.rlim_cur == RLIM_INFINITY ? 1 << 20 : static_cast<size_t>(limit.rlim_cur);
    im.max_connections = fds > 2 * kReservedDescriptors ? fds - kReservedDescriptors : fds / 2;
  }
  im.state->body_budget =
      im.options.max_body_bytes_in_flight != 0 ? im.options.max_body_bytes_in_flight : 4 * im.options.max_body_bytes;
  im.accept_retry = std::make_unique<asio::steady_timer>(*im.contexts[0]);
  im.Accept();
  for (int i = 0; i < n; ++i) {
    im.threads.emplace_back([ctx = im.contexts[i].get(), i, &im] {
      std::string name = "contextd-io-" + std::to_string(i);
      pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
      t_io_context = ctx;
      RunIoThread(ctx, im.options, &im.coalesced_waits);
    });
  }
  im.running = true;
  return Status::Ok();
}

int HttpServer::port() const { return impl_->port; }

void HttpServer::Stop() {
  auto& im = *impl_;
  if (!im.running) return;
  im.running = false;
  asio::post(*im.contexts[0], [&im] {
    beast::error_code ec;
    im.acceptor->close(ec);
    im.accept_retry->cancel();
  });
  im.guards.clear();
  for (auto& c : im.contexts) c->stop();
  for (auto& t : im.threads) t.join();
  im.threads.clear();
  {
    MutexLock lock(&im.state->mu);
    im.state->stopped = true;  // replies still to come are dropped, not posted to freed contexts
    for (Session* s : im.state->sessions) s->CloseForStop();
  }
  // Destroying the contexts destroys their pending handlers, which own the sessions, so
  // every connection is closed rather than left hanging.
  im.acceptor.reset();
  im.accept_retry.reset();
  im.contexts.clear();
}

size_t HttpServer::Shutdown(std::chrono::milliseconds grace) {
  auto& im = *impl_;
  if (!im.running) return 0;
  im.state->draining = true;
  asio::post(*im.contexts[0], [&im] {
    beast::error_code ec;
    im.acceptor->close(ec);
    im.accept_retry->cancel();
  });
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (im.state->in_flight.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const size_t cut_off = im.state->in_flight.load();
  Stop();
  return cut_off;
}

uint64_t HttpServer::accept_errors() const { return impl_->accept_errors.load(); }
uint64_t HttpServer::connections_refused() const { return impl_->refused.load(); }
uint64_t HttpServer::idle_evictions() const { return impl_->evicted.load(); }
uint64_t HttpServer::coalesced_waits() const { return impl_->coalesced_waits.load(); }

size_t HttpServer::body_bytes_in_flight() const { return impl_->state->body_bytes.load(); }

uint64_t HttpServer::body_waits() const { return impl_->state->body_waits.load(); }

}  // namespace contextd
