// Shared set-up of the remote tests: options with short back-offs (so that fault tests run in
// milliseconds), and a macro that skips a test when python3, needed for the fake server, is missing.
#pragma once

#include <catch2/catch_test_macros.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "cai/remote/remote_model.hpp"
#include "server_process.hpp"

#define CAI_REQUIRE_PYTHON3()                                                         \
  do {                                                                                \
    if (cai_test::python3().empty()) SKIP("python3 is not on PATH: no fake server"); \
  } while (false)

namespace cai_test {

using namespace std::chrono_literals;

/// Pool options for `urls` with 5 ms back-off bases, short timeouts and quick ejection.
inline cai::pool_options fast_pool(const std::vector<std::string>& urls, std::size_t concurrency = 4) {
  cai::pool_options o;
  for (const auto& u : urls) o.endpoints.push_back({u, concurrency});
  o.retry.max_attempts = 4;
  o.retry.base_delay = 5ms;
  o.retry.max_delay = 40ms;
  o.retry.jitter = 0.5;
  o.attempt_timeout = 3000ms;
  o.connect_timeout = 1000ms;
  o.deadline = 10000ms;
  o.failures_before_ejection = 3;
  o.ejection_time = 200ms;
  return o;
}

inline cai::remote_options fast_options(const std::vector<std::string>& urls,
                                        cai::remote_scoring scoring = cai::remote_scoring::echo_logprobs) {
  cai::remote_options o;
  o.pool = fast_pool(urls);
  o.model = "fake";
  o.scoring = scoring;
  return o;
}

}  // namespace cai_test
