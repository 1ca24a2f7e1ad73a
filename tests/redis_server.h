// A real redis-server on a loopback port for the life of the object, for the tests and the
// embedding benchmark (the Redis tier and shared limits are never tested against a fake).
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "redis/redis_pool.h"

namespace contextd {

class RedisServer {
 public:
  RedisServer() {
    for (int attempt = 0; attempt < 5 && pid_ <= 0; ++attempt) {
      port_ = 20000 + static_cast<int>(getpid() % 20000) + attempt * 7;
      Start();
    }
  }
  ~RedisServer() { Stop(); }
  // (Re)starts it on its port; running() says whether it answers.
  void Start() {
    pid_ = fork();
    if (pid_ == 0) {
      const int devnull = open("/dev/null", O_WRONLY);
      if (devnull >= 0) dup2(devnull, STDOUT_FILENO);  // its banner is noise in test logs
      const std::string port = std::to_string(port_);
      execlp("redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", static_cast<char*>(nullptr));
      _exit(127);
    }
    RedisPool probe(RedisEndpoint{"127.0.0.1", port_, 200});
    for (int i = 0; i < 100; ++i) {
      if (probe.Ping().ok()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    Stop();
  }
  void Stop() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  bool running() const { return pid_ > 0; }
  int port() const { return port_; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace contextd
