// ServerProcess: runs the real contextd binary on a free port, for integration tests.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "common/json.h"
#include "net/http_client.h"

namespace contextd {

class ServerProcess {
 public:
  // env: variables set for the server on top of the test's own environment (the admin key,
  // CONTEXTD_<FLAG> settings), without touching the test's.
  ServerProcess(std::string data_dir, std::vector<std::string> extra_args = {},
                std::vector<std::pair<std::string, std::string>> env = {})
      : data_dir_(std::move(data_dir)), extra_(std::move(extra_args)), env_(std::move(env)) {}
  ~ServerProcess() { Kill(SIGKILL); }

  // Starts the server and waits for its "listening" line. Fails the test on error.
  void Start() {
    // The child's environment, built before fork (the child only execs).
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string var = *e;
      const std::string name = var.substr(0, var.find('='));
      if (std::none_of(env_.begin(), env_.end(), [&](const auto& kv) { return kv.first == name; })) env.push_back(var);
    }
    for (const auto& [name, value] : env_) env.push_back(name + "=" + value);
    std::vector<char*> envp;
    for (auto& v : env) envp.push_back(v.data());
    envp.push_back(nullptr);
    int out[2];
    ASSERT_EQ(pipe(out), 0);
    pid_ = fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      // Dies with the test (killed by a timeout, or a closed pipe) instead of lingering.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      dup2(out[1], STDOUT_FILENO);
      int log = open((data_dir_ + ".log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (log >= 0) dup2(log, STDERR_FILENO);
      close(out[0]);
      std::vector<std::string> args = {CONTEXTD_BINARY, "serve",   "--port",   "0",
                                       "--data",        data_dir_, "--models", CONTEXTD_MODELS_DIR};
      args.insert(args.end(), extra_.begin(), extra_.end());
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execve(argv[0], argv.data(), envp.data());
      _exit(127);
    }
    close(out[1]);
    std::string line;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    const std::string kReady = "contextd listening on ";
    while (line.find(kReady) == std::string::npos || line.find('\n', line.find(kReady)) == std::string::npos) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "server did not start; see " << data_dir_ << ".log";
      pollfd p{out[0], POLLIN, 0};
      if (poll(&p, 1, 1000) <= 0) continue;
      char buf[256];
      ssize_t n = read(out[0], buf, sizeof(buf));
      ASSERT_GT(n, 0) << "server exited during start-up; see " << data_dir_ << ".log";
      line.append(buf, static_cast<size_t>(n));
    }
    close(out[0]);
    std::string ready = line.substr(line.find(kReady));
    port_ = std::stoi(ready.substr(ready.rfind(':') + 1));
  }

  // Waits until GET /readyz answers 200 (a cluster node: once it follows the update log).
  void WaitReady(int seconds = 60) {
    auto client = Client();
    for (int t = 0; t < seconds * 10; ++t) {
      auto r = client->Request("GET", "/readyz");
      if (r.ok() && r->status == 200) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL() << "server never became ready; see " << data_dir_ << ".log";
  }

  // Sends `sig` and reaps the process. SIGKILL models a crash.
  void Kill(int sig) {
    Signal(sig);
    Wait();
  }
  // Sends `sig` and returns at once (a SIGTERM drains before the process exits).
  void Signal(int sig) {
    if (pid_ > 0) kill(pid_, sig);
  }
  // Reaps the process.
  void Wait() {
    if (pid_ <= 0) return;
    int status;
    waitpid(pid_, &status, 0);
    exit_status_ = status;
    pid_ = -1;
  }

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  int exit_status() const { return exit_status_; }
  std::unique_ptr<HttpClient> Client() const { return std::make_unique<HttpClient>("127.0.0.1", port_); }

 private:
  std::string data_dir_;
  std::vector<std::string> extra_;
  std::vector<std::pair<std::string, std::string>> env_;
  pid_t pid_ = -1;
  int port_ = 0;
  int exit_status_ = 0;
};

// Sends a request and parses the JSON reply; fails the test if the server is unreachable.
inline std::pair<int, Json> Call(HttpClient& c, const std::string& method, const std::string& target,
                                 const std::string& body = "", const HttpHeaders& headers = {}) {
  auto r = c.Request(method, target, body, headers);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (!r.ok()) return {0, Json()};
  auto j = ParseJson(r->body);
  return {r->status, j.ok() ? *j : Json(r->body)};
}

}  // namespace contextd
