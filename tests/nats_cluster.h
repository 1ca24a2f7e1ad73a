// Real nats-servers with JetStream, clustered on loopback ports, for the life of the
// object: the cluster tests never run against a fake NATS. Servers can be killed (-9) and
// restarted on the same ports and storage.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace contextd {

// A loopback port nothing listens on right now.
inline int FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

inline bool PortAccepts(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  close(fd);
  return ok;
}

class NatsCluster {
 public:
  // dir: where each server keeps its JetStream files and its log (dir/nI, dir/nI.log).
  NatsCluster(std::string dir, int n = 3) : dir_(std::move(dir)) {
    std::filesystem::create_directories(dir_);
    for (int i = 0; i < n; ++i) servers_.push_back({FreeLoopbackPort(), FreeLoopbackPort(), -1});
    for (int i = 0; i < n; ++i) Start(i);
  }
  ~NatsCluster() {
    for (size_t i = 0; i < servers_.size(); ++i) Kill(static_cast<int>(i));
  }

  std::vector<std::string> urls() const {
    std::vector<std::string> out;
    for (const auto& s : servers_) out.push_back("nats://127.0.0.1:" + std::to_string(s.port));
    return out;
  }
  static std::string Name(int i) { return "n" + std::to_string(i); }
  int size() const { return static_cast<int>(servers_.size()); }
  bool running(int i) const { return servers_[i].pid > 0; }

  void Start(int i) {
    Server& s = servers_[i];
    std::string routes;
    for (const auto& o : servers_)
      routes += (routes.empty() ? "" : ",") + ("nats://127.0.0.1:" + std::to_string(o.cluster_port));
    const std::string name = Name(i), port = std::to_string(s.port), store = dir_ + "/" + name,
                      cluster = "nats://127.0.0.1:" + std::to_string(s.cluster_port), log = dir_ + "/" + name + ".log";
    s.pid = fork();
    if (s.pid == 0) {
      const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
      }
      execlp("nats-server", "nats-server", "-a", "127.0.0.1", "-p", port.c_str(), "--server_name", name.c_str(), "-js",
             "-sd", store.c_str(), "--cluster_name", "contextd", "--cluster", cluster.c_str(), "--routes",
             routes.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int t = 0; t < 200 && !PortAccepts(s.port); ++t) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }

  void Kill(int i) {
    Server& s = servers_[i];
    if (s.pid <= 0) return;
    kill(s.pid, SIGKILL);
    waitpid(s.pid, nullptr, 0);
    s.pid = -1;
  }

 private:
  struct Server {
    int port;
    int cluster_port;
    pid_t pid;
  };
  std::string dir_;
  std::vector<Server> servers_;
};

}  // namespace contextd
