// Fixture for the real-server tests: llama-cpp-python's OpenAI-compatible server (PyPI
// llama-cpp-python[server]) serving SmolLM2-135M-Instruct (Q4_1 GGUF, from scripts/fetch-smollm2) on a
// loopback port, started by fork/exec and killed when the fixture goes. `llama_skip_reason()` says why
// the tests cannot run here (no python3, no llama_cpp, no model), or is empty.
#pragma once

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cai/model/model_cache.hpp"
#include "cai/remote/detail/http.hpp"
#include "server_process.hpp"

namespace cai_test {

/// ${CAI_MODEL_CACHE:-$HOME/.cache/cai}/SmolLM2-135M-Instruct.Q4_1.gguf
inline std::filesystem::path smollm2_path() { return cai::smollm2_gguf_path(); }

/// Why the llama.cpp server tests cannot run, or empty when they can. Checked once.
inline const std::string& llama_skip_reason() {
  static const std::string reason = [] {
    if (python3().empty()) return std::string("python3 is not on PATH");
    if (!std::filesystem::exists(smollm2_path()))
      return "the model " + smollm2_path().string() + " is absent (run scripts/fetch-smollm2)";
    const std::string check = "'" + python3() + "' -c 'import llama_cpp, llama_cpp.server' >/dev/null 2>&1";
    if (std::system(check.c_str()) != 0)
      return std::string("the Python package llama-cpp-python[server] is not installed (import llama_cpp failed)");
    return std::string();
  }();
  return reason;
}

/// One llama-cpp-python server on 127.0.0.1 using `threads` threads for prompts and generation alike
/// (its default for prompts is every core, which oversubscribes a small machine running two), ready
/// when constructed (or, with `wait` false, after
/// `wait_ready()`: to start several at once).
class llama_server {
 public:
  explicit llama_server(int threads = 1, bool wait = true) : port_(free_loopback_port()) {
    log_ = (std::filesystem::temp_directory_path() /
            ("cai-llama-server-" + std::to_string(::getpid()) + "-" + std::to_string(port_) + ".log"))
               .string();
    process_.emplace(std::vector<std::string>{python3(), "-m", "llama_cpp.server", "--model", smollm2_path().string(),
                                              "--host", "127.0.0.1", "--port", std::to_string(port_),
                                              "--n_ctx", "512", "--n_threads", std::to_string(threads),
                                              "--n_threads_batch", std::to_string(threads),
                                              "--seed", "0", "--verbose", "false"},
                     log_);
    if (wait) wait_ready();
  }

  /// Waits until the server answers GET /v1/models.
  void wait_ready() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
    while (std::chrono::steady_clock::now() < deadline) {
      if (process_->exited()) throw std::runtime_error("the llama.cpp server exited at start; see " + log_);
      cai::remote_detail::http_request r;
      r.url = base_url() + "/models";
      r.post = false;
      r.timeout = std::chrono::milliseconds(1000);
      if (cai::remote_detail::send(r).status == 200) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    throw std::runtime_error("the llama.cpp server did not answer within 90 s; see " + log_);
  }
  ~llama_server() {
    process_->kill();
    std::filesystem::remove(log_);
  }
  llama_server(const llama_server&) = delete;
  llama_server& operator=(const llama_server&) = delete;

  [[nodiscard]] std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }
  void kill() { process_->kill(); }

 private:
  int port_;
  std::string log_;
  std::optional<child_process> process_;
};

/// Runs tests/remote/llama_reference.py on `request` (see that file) and returns its answer.
inline nlohmann::json llama_reference(const nlohmann::json& request) {
  const auto dir = std::filesystem::temp_directory_path();
  const auto in = dir / ("cai-llama-ref-" + std::to_string(::getpid()) + ".json");
  const auto out = dir / ("cai-llama-ref-" + std::to_string(::getpid()) + ".out.json");
  std::ofstream(in) << request.dump();
  const std::string cmd = "'" + python3() + "' '" + (remote_test_dir() / "llama_reference.py").string() + "' '" +
                          smollm2_path().string() + "' < '" + in.string() + "' > '" + out.string() + "'";
  const int rc = std::system(cmd.c_str());
  std::filesystem::remove(in);
  if (rc != 0) throw std::runtime_error("llama_reference.py failed");
  std::ifstream f(out);
  auto j = nlohmann::json::parse(f);
  f.close();
  std::filesystem::remove(out);
  return j;
}

}  // namespace cai_test
