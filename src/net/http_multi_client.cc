#include "net/http_multi_client.h"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace contextd {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

struct Conn {
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  http::request<http::string_body> req;
  std::optional<http::response_parser<http::string_body>> parser;
  MultiRequest spec;
  HttpMultiClient::Done done;
  bool reused = false;   // the connection already carried a reply
  bool retried = false;  // this request was already resent once
};

bool ClosedByPeer(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe;
}

}  // namespace

struct HttpMultiClient::Rep {
  std::string host;
  int64_t timeout_ms;
  asio::io_context ioc{1};
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(ioc);
  std::optional<tcp::endpoint> endpoint;
  // The I/O thread's alone: connections, the free ones, the requests waiting for one.
  std::vector<std::unique_ptr<Conn>> conns;
  std::vector<Conn*> idle;
  std::deque<std::pair<MultiRequest, Done>> queue;
  bool stopping = false;
  bool pumping = false;  // a completion inside Pump's loop leaves the next request to it

  std::atomic<size_t> pending{0};
  std::mutex mu;
  std::condition_variable drained;
  std::thread thread;

  void Pump() {
    if (pumping) return;
    pumping = true;
    while (!queue.empty() && (stopping || !idle.empty())) {
      auto [request, done] = std::move(queue.front());
      queue.pop_front();
      if (stopping) {
        done(0);
        Settled();
        continue;
      }
      Conn* c = idle.back();
      idle.pop_back();
      c->spec = std::move(request);
      c->done = std::move(done);
      c->retried = false;
      Start(c);
    }
    pumping = false;
  }

  void Start(Conn* c) {
    if (c->stream) {
      Send(c);
      return;
    }
    if (!endpoint) return Complete(c, 0);
    try {  // at the descriptor limit Asio throws; the request then gets no reply
      c->stream.emplace(ioc);
    } catch (const std::exception&) {
      c->stream.reset();
      return Complete(c, 0);
    }
    c->reused = false;
    c->buffer.clear();
    Expire(c);
    c->stream->async_connect(*endpoint, [this, c](beast::error_code ec) {
      if (ec) return Fail(c, ec);
      beast::error_code ignored;
      c->stream->socket().set_option(tcp::no_delay(true), ignored);
      Send(c);
    });
  }

  void Expire(Conn* c) {
    if (timeout_ms > 0) {
      c->stream->expires_after(std::chrono::milliseconds(timeout_ms));
    } else {
      c->stream->expires_never();
    }
  }

  void Send(Conn* c) {
    const MultiRequest& r = c->spec;
    c->req = http::request<http::string_body>(http::string_to_verb(r.method), r.target, 11);
    c->req.set(http::field::host, host);
    for (const auto& [k, v] : r.headers) c->req.set(k, v);
    c->req.body() = r.body;
    c->req.prepare_payload();
    c->req.keep_alive(true);
    c->parser.emplace();
    c->parser->body_limit(1ull << 32);
    Expire(c);
    http::async_write(*c->stream, c->req, [this, c](beast::error_code ec, size_t) {
      if (ec) return Fail(c, ec);
      http::async_read(*c->stream, c->buffer, *c->parser, [this, c](beast::error_code ec2, size_t) {
        if (ec2) return Fail(c, ec2);
        const int status = static_cast<int>(c->parser->get().result_int());
        if (!c->parser->get().keep_alive()) c->stream.reset();
        c->reused = true;
        c->parser.reset();
        Complete(c, status);
      });
    });
  }

  void Fail(Conn* c, const beast::error_code& ec) {
    c->stream.reset();
    c->parser.reset();
    if (!stopping && c->reused && !c->retried && ClosedByPeer(ec)) {
      c->retried = true;  // a kept-alive connection the server had closed: once more, fresh
      return Start(c);
    }
    Complete(c, 0);
  }

  void Complete(Conn* c, int status) {
    Done done = std::move(c->done);
    c->done = nullptr;
    idle.push_back(c);
    if (done) done(status);
    Settled();
    Pump();
  }

  void Settled() {
    if (pending.fetch_sub(1) == 1) {
      std::lock_guard<std::mutex> lock(mu);
      drained.notify_all();
    }
  }

  void Wait() {
    std::unique_lock<std::mutex> lock(mu);
    drained.wait(lock, [&] { return pending.load() == 0; });
  }
};

HttpMultiClient::HttpMultiClient(std::string host, int port, int connections, int64_t timeout_ms)
    : rep_(std::make_unique<Rep>()) {
  rep_->host = std::move(host);
  rep_->timeout_ms = timeout_ms;
  beast::error_code ec;
  tcp::resolver resolver(rep_->ioc);
  auto results = resolver.resolve(rep_->host, std::to_string(port), ec);
  if (!ec && !results.empty()) rep_->endpoint = results.begin()->endpoint();
  for (int i = 0; i < connections; ++i) {
    rep_->conns.push_back(std::make_unique<Conn>());
    rep_->idle.push_back(rep_->conns.back().get());
  }
  rep_->thread = std::thread([r = rep_.get()] { r->ioc.run(); });
}

HttpMultiClient::~HttpMultiClient() {
  asio::post(rep_->ioc, [r = rep_.get()] {
    r->stopping = true;
    r->Pump();  // what is queued completes with 0
    for (auto& c : r->conns) {
      if (c->stream && c->done) {
        beast::error_code ignored;
        c->stream->socket().close(ignored);  // in flight: fails, completes with 0
      }
    }
  });
  rep_->Wait();
  rep_->work.reset();
  rep_->ioc.stop();
  rep_->thread.join();
}

int HttpMultiClient::Connect(const std::string& probe_target) {
  auto answered = std::make_shared<std::atomic<int>>(0);
  rep_->pending += rep_->conns.size();
  asio::post(rep_->ioc, [r = rep_.get(), probe_target, answered] {
    // One probe on each connection (not through the queue, which would reuse the first).
    std::vector<Conn*> all(r->idle.begin(), r->idle.end());
    r->idle.clear();
    for (size_t busy = all.size(); busy < r->conns.size(); ++busy) r->Settled();  // not probed
    for (Conn* c : all) {
      c->spec = MultiRequest{"GET", probe_target, "", {}};
      c->done = [answered](int status) {
        if (status != 0) ++*answered;
      };
      c->retried = false;
      r->Start(c);
    }
  });
  rep_->Wait();
  return answered->load();
}

void HttpMultiClient::Submit(MultiRequest request, Done done) {
  ++rep_->pending;
  asio::post(rep_->ioc, [r = rep_.get(), request = std::move(request), done = std::move(done)]() mutable {
    r->queue.emplace_back(std::move(request), std::move(done));
    r->Pump();
  });
}

size_t HttpMultiClient::pending() const { return rep_->pending.load(); }

void HttpMultiClient::Drain() { rep_->Wait(); }

}  // namespace contextd
