// The HTTP/1.1 request reader as it serves: a real HttpServer on a loopback port, each
// input sent as the bytes of one connection (then half-closed). The server must answer or
// close, never crash, leak or hang; the handler echoes what it was given and runs the
// path and query decoders the API uses on it.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <memory>

#include "fuzz_util.h"
#include "net/http_server.h"
#include "server/api.h"

namespace {

// Lives as long as the process (a static, so LeakSanitizer sees it held).
contextd::HttpServer* server = nullptr;

int Port() {
  static const int port = [] {
    contextd::HttpServerOptions options;
    options.port = 0;
    options.io_threads = 1;
    options.max_body_bytes = 1 << 16;
    options.header_timeout_ms = 1000;
    options.idle_timeout_s = 1;
    server = new contextd::HttpServer(options, [](contextd::HttpRequest req, contextd::Responder respond) {
      contextd::HttpResponse res;
      auto path = contextd::PercentDecode(req.path);
      auto query = contextd::ParseQueryString(req.query);
      res.status = path.ok() && query.ok() ? 200 : 400;
      res.body = req.method + " " + (path.ok() ? *path : "") + " " + std::to_string(req.body.size());
      respond(std::move(res));
    });
    if (!server->Start().ok()) std::abort();
    return server->port();
  }();
  return port;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) std::abort();
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(Port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int connected;
  do {
    connected = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  } while (connected != 0 && errno == EINTR);
  if (connected != 0) std::abort();
  for (size_t sent = 0; sent < size;) {
    const ssize_t n = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the server may close early (a bad request line)
    sent += static_cast<size_t>(n);
  }
  shutdown(fd, SHUT_WR);
  // Read until the server closes; it must within its timeouts (1 s here; the margin is for a
  // loaded machine). A hang fails the run.
  char buf[4096];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    // libFuzzer's timeout timer is a signal: an interrupted wait is retried, not a hang.
    const int ready = poll(&p, 1, 20000);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) std::abort();
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
  }
  close(fd);
  return 0;
}
