// Test fixtures for the remote tests: a child process (the fake server of fake_server.py, or
// llama-cpp-python's server) started with fork/exec on a loopback port, and always stopped (SIGKILL,
// then waitpid) when the fixture goes out of scope. Helpers find python3 and talk to the fake server's
// control endpoint.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cai/remote/detail/http.hpp"

namespace cai_test {

/// The full path of `name` on PATH, or empty.
inline std::string find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return {};
  std::string p(path);
  std::size_t start = 0;
  while (start <= p.size()) {
    const auto end = p.find(':', start);
    const std::string dir = p.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!dir.empty()) {
      const auto candidate = std::filesystem::path(dir) / name;
      if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
    }
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return {};
}

/// The Python that runs the servers: the build's test Python (one that imports llama_cpp when there is
/// one; see tests/CMakeLists.txt), else python3 on PATH.
inline std::string python3() {
#ifdef CAI_TEST_PYTHON
  if (std::string configured = CAI_TEST_PYTHON; !configured.empty() && std::filesystem::exists(configured))
    return configured;
#endif
  return find_on_path("python3");
}

/// The folder of this file: where fake_server.py lives.
inline std::filesystem::path remote_test_dir() { return std::filesystem::path(__FILE__).parent_path(); }

/// A free TCP port on 127.0.0.1 (bound to port 0 and released: for servers that cannot print theirs).
inline int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot bind a loopback port");
  }
  const int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

/// A child process; killed and reaped on destruction.
class child_process {
 public:
  /// Starts `argv` with stdout on a pipe (read by `read_line`) and stderr to `stderr_file` (or /dev/null).
  explicit child_process(const std::vector<std::string>& argv, const std::string& stderr_file = "/dev/null") {
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::dup2(fds[1], 1);
      const int err = ::open(stderr_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (err >= 0) ::dup2(err, 2);
      ::close(fds[0]);
      ::close(fds[1]);
      ::setpgid(0, 0);  // its own group: killing it kills its children too
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execvp(args[0], args.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    out_ = fds[0];
  }
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;
  ~child_process() {
    kill();
    if (out_ >= 0) ::close(out_);
  }

  /// One line of the child's stdout, waiting at most `timeout`; nullopt on timeout or end of file.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (const auto nl = buffer_.find('\n'); nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
      char chunk[512];
      const auto n = ::read(out_, chunk, sizeof chunk);
      if (n <= 0) return std::nullopt;
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  /// Kills the child (and its group) and waits for it; harmless when already done.
  void kill() {
    if (pid_ <= 0) return;
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  /// Whether the child has exited (reaping it if so).
  bool exited() {
    if (pid_ <= 0) return true;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return true;
    }
    return false;
  }

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  std::string buffer_;
};

/// The fake server of fake_server.py on an ephemeral loopback port.
class fake_server {
 public:
  explicit fake_server(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv{python3(), (remote_test_dir() / "fake_server.py").string(), "--port", "0"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    process_.emplace(argv);
    const auto line = process_->read_line(std::chrono::seconds(20));
    if (!line || line->rfind("PORT ", 0) != 0) throw std::runtime_error("the fake server did not start");
    port_ = std::stoi(line->substr(5));
  }

  [[nodiscard]] int port() const noexcept { return port_; }
  /// Its OpenAI-style base URL, http://127.0.0.1:<port>/v1.
  [[nodiscard]] std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }

  /// Replaces its script: `{"script": [...], "default": "...", "die_after": n}`.
  void control(const nlohmann::json& body) const {
    cai::remote_detail::http_request r;
    r.url = base_url() + "/control";
    r.body = body.dump();
    const auto response = cai::remote_detail::send(r);
    if (response.status != 200) throw std::runtime_error("the fake server's control endpoint failed");
  }

  /// Its counters: requests, modes, request_ids, last, auth.
  [[nodiscard]] nlohmann::json stats() const {
    cai::remote_detail::http_request r;
    r.url = base_url() + "/stats";
    r.post = false;
    const auto response = cai::remote_detail::send(r);
    if (response.status != 200) throw std::runtime_error("the fake server's stats endpoint failed");
    return nlohmann::json::parse(response.body);
  }

  void kill() { process_->kill(); }
  bool exited() { return process_->exited(); }

 private:
  std::optional<child_process> process_;
  int port_ = 0;
};

}  // namespace cai_test
