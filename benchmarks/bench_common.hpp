// Helpers shared by the benchmark drivers (bench_transformer.cpp, bench_training.cpp): the median of
// repeated timings, the process's peak memory, running a worker or a peer that prints one JSON line, and
// environment overrides.
#pragma once

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <sys/resource.h>

#include <nlohmann/json.hpp>

namespace cai_bench {

using json = nlohmann::json;

inline double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

inline double peak_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // Linux: kilobytes
}

/// Runs a command, its output going to `scratch` in the temporary directory; its last non-empty output
/// line is JSON. An object with "missing" or a failure comes back as {"error": why}.
inline json run_json(const std::string& cmd, const std::string& scratch) {
  const std::filesystem::path out = std::filesystem::temp_directory_path() / scratch;
  const int rc = std::system((cmd + " > \"" + out.string() + "\" 2>&1").c_str());
  std::ifstream in(out);
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty() && line.find_first_not_of(" \t\r") != std::string::npos) last = line;
  json j;
  try {
    j = json::parse(last);
  } catch (const std::exception&) {
    return json{{"error", rc == 124 * 256 ? std::string("timed out")
                                          : (rc != 0 ? "failed: " : "unreadable output: ") + last.substr(0, 200)}};
  }
  if (j.contains("missing")) return json{{"error", "peer not installed (" + j["missing"].get<std::string>() + ")"}};
  if (rc != 0) return json{{"error", "exit status " + std::to_string(rc) + (rc == 124 * 256 ? " (timed out)" : "")}};
  return j;
}

inline std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

}  // namespace cai_bench
