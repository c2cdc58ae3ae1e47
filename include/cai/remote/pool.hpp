/// @file remote/pool.hpp
/// A pool of HTTP endpoints serving the same model, and the error type of `cai/remote/`.
///
/// `endpoint_pool` spreads a batch of JSON requests over several base URLs, each with its own limit on
/// requests in flight, from a few worker threads; results come back in input order whatever order they
/// finished in. A request that fails on a timeout, a connection error, HTTP 429, HTTP 5xx or a malformed
/// response is retried, preferably on another endpoint, after an exponential back-off with jitter (a
/// 429's Retry-After is honoured); an endpoint that fails `failures_before_ejection` times in a row is
/// taken out for `ejection_time` and then given one request again. Each request has a deadline covering
/// all of its attempts. When a request cannot be served, `remote_error` names the endpoint, the request
/// id (a UUID, also sent as the `X-Request-Id` header) and what went wrong on each endpoint; when every
/// endpoint is out, it says so.
///
/// The API key is read from the environment variable named in `pool_options::api_key_env`, sent as a
/// bearer token, and never put in a message.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cai/error.hpp"
#include "cai/remote/detail/http.hpp"

namespace cai {

/// A request to a remote model that could not be served. The message names the endpoint (its base URL)
/// and the request id that the server saw in `X-Request-Id`.
class remote_error : public error {
 public:
  remote_error(std::string endpoint, std::string request_id, const std::string& what)
      : error(format(endpoint, request_id, what)),
        endpoint_(std::move(endpoint)),
        request_id_(std::move(request_id)) {}
  /// The base URL concerned; empty when no endpoint was reached.
  [[nodiscard]] const std::string& endpoint() const noexcept { return endpoint_; }
  /// The request's id; empty for errors outside any request.
  [[nodiscard]] const std::string& request_id() const noexcept { return request_id_; }

 private:
  static std::string format(const std::string& endpoint, const std::string& id, const std::string& what) {
    std::string s = "remote model: " + what;
    if (!endpoint.empty() || !id.empty()) {
      s += " (";
      if (!endpoint.empty()) s += "endpoint " + endpoint;
      if (!endpoint.empty() && !id.empty()) s += ", ";
      if (!id.empty()) s += "request " + id;
      s += ")";
    }
    return s;
  }
  std::string endpoint_;
  std::string request_id_;
};

/// Thrown by a response parser for a 200 response whose body is not what the API promises (garbage,
/// truncated JSON, a missing field): the pool retries it like a server error.
class malformed_response : public error {
 public:
  using error::error;
};

/// One server: its OpenAI-style base URL (up to and including `/v1`, e.g. `http://127.0.0.1:8080/v1`)
/// and how many requests it may have in flight at once.
struct remote_endpoint {
  std::string base_url;
  std::size_t max_concurrency = 4;
};

/// Retries with exponential back-off: attempt k (1-based) that failed waits
/// `min(max_delay, base_delay * 2^(k-1))`, scaled by a factor drawn uniformly in `[1 - jitter, 1]`.
struct retry_options {
  std::size_t max_attempts = 6;                  ///< attempts per request, the first included
  std::chrono::milliseconds base_delay{250};
  std::chrono::milliseconds max_delay{8000};
  double jitter = 0.5;                           ///< in [0, 1]; 0: no jitter
};

/// How an `endpoint_pool` reaches its servers.
struct pool_options {
  std::vector<remote_endpoint> endpoints;
  retry_options retry;
  std::chrono::milliseconds attempt_timeout{120000};  ///< one HTTP exchange, connect included
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds deadline{600000};         ///< per request, all attempts and waits included
  std::size_t failures_before_ejection = 3;           ///< consecutive failures that take an endpoint out
  std::chrono::milliseconds ejection_time{10000};     ///< how long it stays out before one more try
  /// Name of the environment variable holding the API key (sent as `Authorization: Bearer`); empty:
  /// no key. The key itself is never logged, written or put in an error message.
  std::string api_key_env;
};

/// What the pool did with one endpoint so far.
struct endpoint_stats {
  std::string base_url;
  std::size_t successes = 0;      ///< requests answered and parsed
  std::size_t failures = 0;       ///< attempts that failed (transport, 5xx, malformed)
  std::size_t throttled = 0;      ///< HTTP 429 answers
  std::size_t ejections = 0;      ///< times the endpoint was taken out
  bool ejected = false;           ///< out at the moment
  std::string last_error;         ///< the last failure seen, or empty
};

/// A set of endpoints serving one model; sends batches of JSON requests concurrently with retries.
/// Thread-safe; neither copyable nor movable (hold it by `std::unique_ptr` to move it).
class endpoint_pool {
 public:
  /// @throws config_error for an empty endpoint list, a zero concurrency, zero attempts, or an API-key
  ///         variable that is named but not set.
  explicit endpoint_pool(pool_options options) : options_(std::move(options)) {
    if (options_.endpoints.empty())
      throw config_error("endpoint_pool: no endpoint given; list at least one base URL in pool_options::endpoints");
    if (options_.retry.max_attempts == 0)
      throw config_error("endpoint_pool: retry.max_attempts must be at least 1");
    if (options_.retry.jitter < 0.0 || options_.retry.jitter > 1.0)
      throw config_error("endpoint_pool: retry.jitter must be in [0, 1]");
    for (auto& e : options_.endpoints) {
      if (e.max_concurrency == 0)
        throw config_error("endpoint_pool: endpoint " + e.base_url + " has max_concurrency 0; give it at least 1");
      while (!e.base_url.empty() && e.base_url.back() == '/') e.base_url.pop_back();
      if (e.base_url.empty()) throw config_error("endpoint_pool: an endpoint has an empty base URL");
      state_.push_back({});
      state_.back().stats.base_url = e.base_url;
    }
    if (!options_.api_key_env.empty()) {
      const char* key = std::getenv(options_.api_key_env.c_str());
      if (key == nullptr)
        throw config_error("endpoint_pool: the API key variable " + options_.api_key_env +
                           " is not set in the environment; set it, or leave pool_options::api_key_env empty");
      auth_header_ = std::string("Authorization: Bearer ") + key;
    }
    std::random_device rd;
    rng_.seed((std::uint64_t{rd()} << 32) ^ rd());
    id_prefix_ = rng_();
  }

  endpoint_pool(const endpoint_pool&) = delete;
  endpoint_pool& operator=(const endpoint_pool&) = delete;

  /// Posts `bodies[i]` to `path` (appended to a base URL, e.g. "/completions") and returns
  /// `parse(response_json, i)` for each, in input order.
  ///
  /// @tparam Parse callable `Result(const nlohmann::json&, std::size_t)`, called concurrently; throws
  ///         `malformed_response` for a body that should be retried, any other `cai::error` for a
  ///         permanent failure (not retried: it becomes a `remote_error` naming endpoint and request).
  /// @throws remote_error when a request cannot be served within its attempts and deadline, or is
  ///         refused by a server (HTTP 4xx other than 429); the first such error of the batch, after
  ///         which the other requests stop retrying.
  template <class Parse>
  auto post_all(std::string_view path, std::span<const std::string> bodies, Parse parse)
      -> std::vector<std::invoke_result_t<Parse&, const nlohmann::json&, std::size_t>> {
    using result_t = std::invoke_result_t<Parse&, const nlohmann::json&, std::size_t>;
    std::vector<std::optional<result_t>> slots(bodies.size());
    std::size_t capacity = 0;
    for (const auto& e : options_.endpoints) capacity += e.max_concurrency;
    const std::size_t workers = std::min(capacity, bodies.size());

    std::atomic<std::size_t> next{0};
    std::atomic<bool> stop{false};
    std::exception_ptr failure;
    std::mutex failure_mutex;
    auto work = [&] {
      for (;;) {
        if (stop.load()) return;
        const std::size_t i = next.fetch_add(1);
        if (i >= bodies.size()) return;
        try {
          slots[i].emplace(post_one(path, bodies[i], i, parse, &stop));
        } catch (...) {
          std::lock_guard lock(failure_mutex);
          if (!failure) failure = std::current_exception();
          stop.store(true);
          cv_.notify_all();  // workers waiting for a slot or an endpoint give up too
          return;
        }
      }
    };
    if (workers <= 1) {
      work();
    } else {
      std::vector<std::thread> threads;
      threads.reserve(workers);
      for (std::size_t w = 0; w < workers; ++w) threads.emplace_back(work);
      for (auto& t : threads) t.join();
    }
    if (failure) std::rethrow_exception(failure);
    std::vector<result_t> out;
    out.reserve(slots.size());
    for (auto& s : slots) out.push_back(std::move(*s));
    return out;
  }

  /// Posts one body; see `post_all` (`parse` gets index 0).
  template <class Parse>
  auto post(std::string_view path, const std::string& body, Parse parse) {
    return post_one(path, body, 0, parse, nullptr);
  }

  /// One POST of `body` to `path` on endpoint `endpoint`, without retries: the raw answer (for probes).
  [[nodiscard]] remote_detail::http_response post_once(std::size_t endpoint, std::string_view path,
                                                       const std::string& body) const {
    remote_detail::http_request r = make_request(endpoint, path);
    r.body = body;
    return remote_detail::send(r);
  }

  /// A GET of `path` on one endpoint, without retries: the raw answer (for probes and tests).
  [[nodiscard]] remote_detail::http_response get(std::size_t endpoint, std::string_view path) const {
    remote_detail::http_request r = make_request(endpoint, path);
    r.post = false;
    return remote_detail::send(r);
  }

  /// What happened to each endpoint so far, in the order of `options().endpoints`.
  [[nodiscard]] std::vector<endpoint_stats> stats() const {
    std::lock_guard lock(mutex_);
    std::vector<endpoint_stats> out;
    const auto now = clock::now();
    for (const auto& s : state_) {
      out.push_back(s.stats);
      out.back().ejected = s.ejected_until > now;
    }
    return out;
  }

  /// Attempts retried so far, over all requests.
  [[nodiscard]] std::size_t retries() const noexcept { return retries_.load(); }

  [[nodiscard]] const pool_options& options() const noexcept { return options_; }

 private:
  using clock = std::chrono::steady_clock;

  struct endpoint_state {
    std::size_t in_flight = 0;
    std::size_t consecutive_failures = 0;
    clock::time_point ejected_until{};
    endpoint_stats stats;
  };

  enum class outcome { success, failure, throttled, neutral };

  // Thrown in a worker whose batch has already failed on another request; never leaves post_all.
  struct batch_abandoned {};

  // Waits `delay`, in slices, returning early (by throwing batch_abandoned) when the batch has failed.
  static void sleep_unless_stopped(std::chrono::milliseconds delay, const std::atomic<bool>* stop) {
    const auto end = clock::now() + delay;
    for (;;) {
      if (stop != nullptr && stop->load()) throw batch_abandoned();
      const auto now = clock::now();
      if (now >= end) return;
      std::this_thread::sleep_for(std::min<clock::duration>(end - now, std::chrono::milliseconds(20)));
    }
  }

  static std::string to_hex(std::uint64_t v) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string s;
    do {
      s.insert(s.begin(), digits[v & 15]);
      v >>= 4;
    } while (v != 0);
    return s;
  }

  // A version-4 UUID (some servers refuse any other X-Request-Id): 64 random bits of the pool, then a
  // counter, so that ids are unique within the pool and unlikely to repeat across pools.
  std::string next_request_id() {
    const std::uint64_t hi = id_prefix_;
    const std::uint64_t lo = counter_.fetch_add(1);
    auto hex = [](std::uint64_t v, int digits) {
      std::string h = to_hex(v);
      if (static_cast<int>(h.size()) < digits) h.insert(0, static_cast<std::size_t>(digits) - h.size(), '0');
      return h.substr(h.size() - static_cast<std::size_t>(digits));
    };
    return hex(hi >> 32, 8) + "-" + hex(hi >> 16, 4) + "-4" + hex(hi, 3) + "-" +
           hex(8 | ((lo >> 60) & 3), 1) + hex(lo >> 48, 3) + "-" + hex(lo, 12);
  }

  static std::string excerpt(const std::string& body) {
    constexpr std::size_t limit = 200;
    std::string s = body.size() > limit ? body.substr(0, limit) + "..." : body;
    for (auto& c : s)
      if (c == '\n' || c == '\r') c = ' ';
    return s;
  }

  // The errors of every endpoint, for a message that says why a request could not be served. The pool is
  // down when every endpoint is taken out or failed its last attempt.
  std::string summary_locked(clock::time_point now) const {
    std::string s;
    bool all_out = true;
    for (const auto& st : state_) {
      if (!s.empty()) s += "; ";
      s += st.stats.base_url + ": " + (st.stats.last_error.empty() ? "no failure" : st.stats.last_error);
      if (st.ejected_until > now) s += " (taken out)";
      else if (st.consecutive_failures == 0) all_out = false;  // its last attempt succeeded, or none yet
    }
    return (all_out ? "every endpoint of the pool is down: " : "endpoints: ") + s;
  }

  // Picks an endpoint with a free slot, not taken out, preferring one other than `avoid`; waits for one
  // until `deadline`.
  std::size_t acquire(clock::time_point deadline, std::optional<std::size_t> avoid, const std::string& id,
                      const std::atomic<bool>* stop) {
    std::unique_lock lock(mutex_);
    for (;;) {
      if (stop != nullptr && stop->load()) throw batch_abandoned();
      const auto now = clock::now();
      std::optional<std::size_t> best;
      double best_load = 0.0;
      bool any_in_service = false;
      clock::time_point earliest_return = clock::time_point::max();
      for (int pass = 0; pass < 2 && !best; ++pass) {
        for (std::size_t k = 0; k < state_.size(); ++k) {
          const std::size_t i = (k + round_robin_) % state_.size();
          auto& s = state_[i];
          if (s.ejected_until > now) {
            earliest_return = std::min(earliest_return, s.ejected_until);
            continue;
          }
          any_in_service = true;
          if (s.in_flight >= options_.endpoints[i].max_concurrency) continue;
          if (pass == 0 && avoid && *avoid == i && state_.size() > 1) continue;
          const double load = static_cast<double>(s.in_flight) /
                              static_cast<double>(options_.endpoints[i].max_concurrency);
          if (!best || load < best_load) {
            best = i;
            best_load = load;
          }
        }
      }
      if (best) {
        ++state_[*best].in_flight;
        ++round_robin_;
        return *best;
      }
      if (now >= deadline || (!any_in_service && earliest_return >= deadline))
        throw remote_error("", id,
                           (any_in_service ? std::string("no endpoint had a free slot before the request's deadline; ")
                                           : std::string("no endpoint came back before the request's deadline; ")) +
                               summary_locked(now));
      const auto wake = any_in_service ? deadline : std::min(deadline, earliest_return);
      cv_.wait_until(lock, wake);
    }
  }

  void release(std::size_t i, outcome o, const std::string& why) {
    {
      std::lock_guard lock(mutex_);
      auto& s = state_[i];
      --s.in_flight;
      switch (o) {
        case outcome::success:
          s.consecutive_failures = 0;
          ++s.stats.successes;
          break;
        case outcome::failure:
          ++s.stats.failures;
          s.stats.last_error = why;
          if (s.ejected_until > clock::now()) break;  // a request sent before it was taken out
          if (++s.consecutive_failures >= options_.failures_before_ejection) {
            s.ejected_until = clock::now() + options_.ejection_time;
            ++s.stats.ejections;
            s.consecutive_failures = options_.failures_before_ejection - 1;  // one more failure: out again
          }
          break;
        case outcome::throttled:
          ++s.stats.throttled;
          s.stats.last_error = why;
          break;
        case outcome::neutral:
          break;
      }
    }
    cv_.notify_all();
  }

  std::chrono::milliseconds backoff(std::size_t attempt) {
    const auto& r = options_.retry;
    double ms = static_cast<double>(r.base_delay.count());
    for (std::size_t k = 1; k < attempt && ms < static_cast<double>(r.max_delay.count()); ++k) ms *= 2.0;
    ms = std::min(ms, static_cast<double>(r.max_delay.count()));
    double u;
    {
      std::lock_guard lock(mutex_);
      u = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
    }
    return std::chrono::milliseconds(static_cast<long long>(ms * (1.0 - r.jitter * u)));
  }

  remote_detail::http_request make_request(std::size_t endpoint, std::string_view path) const {
    remote_detail::http_request r;
    r.url = options_.endpoints.at(endpoint).base_url + std::string(path);
    if (!auth_header_.empty()) r.headers.push_back(auth_header_);
    r.timeout = options_.attempt_timeout;
    r.connect_timeout = options_.connect_timeout;
    return r;
  }

  template <class Parse>
  auto post_one(std::string_view path, const std::string& body, std::size_t index, Parse& parse,
                const std::atomic<bool>* stop)
      -> std::invoke_result_t<Parse&, const nlohmann::json&, std::size_t> {
    const std::string id = next_request_id();
    const auto deadline = clock::now() + options_.deadline;
    std::optional<std::size_t> avoid;
    for (std::size_t attempt = 1;; ++attempt) {
      const std::size_t i = acquire(deadline, avoid, id, stop);
      const std::string& url = options_.endpoints[i].base_url;
      const auto now = clock::now();
      remote_detail::http_request request;
      request.url = url + std::string(path);
      request.body = body;
      request.headers.push_back("X-Request-Id: " + id);
      if (!auth_header_.empty()) request.headers.push_back(auth_header_);
      request.timeout = std::min(options_.attempt_timeout,
                                 std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now));
      request.connect_timeout = std::min(options_.connect_timeout, request.timeout);
      const remote_detail::http_response response = remote_detail::send(request);

      outcome o = outcome::failure;
      std::string why;
      std::optional<std::chrono::milliseconds> wait;
      if (response.status == 0) {
        why = response.timed_out ? "timed out (" + response.transport_error + ")"
                                 : "no response (" + response.transport_error + ")";
      } else if (response.status == 200) {
        try {
          nlohmann::json j;
          try {
            j = nlohmann::json::parse(response.body);
          } catch (const nlohmann::json::exception& e) {
            throw malformed_response(std::string("the response is not valid JSON (") + e.what() + "): " +
                                     excerpt(response.body));
          }
          auto result = parse(std::as_const(j), index);
          release(i, outcome::success, {});
          return result;
        } catch (const malformed_response& e) {
          why = e.what();
        } catch (const nlohmann::json::exception& e) {
          why = std::string("the response lacks an expected field (") + e.what() + "): " + excerpt(response.body);
        } catch (const remote_error&) {
          release(i, outcome::neutral, {});
          throw;
        } catch (const std::exception& e) {
          release(i, outcome::neutral, {});
          throw remote_error(url, id, e.what());
        }
      } else if (response.status == 429) {
        o = outcome::throttled;
        why = "HTTP 429 (too many requests)";
        if (response.retry_after)
          wait = std::chrono::milliseconds(static_cast<long long>(*response.retry_after * 1000.0));
      } else if (response.status >= 500) {
        why = "HTTP " + std::to_string(response.status) + ": " + excerpt(response.body);
      } else {
        release(i, outcome::neutral, {});
        throw remote_error(url, id,
                           "the server refused the request with HTTP " + std::to_string(response.status) + ": " +
                               excerpt(response.body) + " (not retried: check the model name and options)");
      }
      release(i, o, why);
      if (attempt >= options_.retry.max_attempts) {
        std::lock_guard lock(mutex_);
        throw remote_error(url, id,
                           "gave up after " + std::to_string(attempt) + " attempts; last: " + why + "; " +
                               summary_locked(clock::now()));
      }
      const auto delay = wait ? std::max(*wait, backoff(attempt)) : backoff(attempt);
      if (clock::now() + delay >= deadline) {
        std::lock_guard lock(mutex_);
        throw remote_error(url, id,
                           "the request's deadline of " + std::to_string(options_.deadline.count()) +
                               " ms would pass before another attempt; " + std::to_string(attempt) +
                               " attempts made; last: " + why + "; " +
                               summary_locked(clock::now()));
      }
      ++retries_;
      sleep_unless_stopped(delay, stop);
      avoid = i;
    }
  }

  pool_options options_;
  std::string auth_header_;
  std::uint64_t id_prefix_ = 0;
  std::atomic<std::uint64_t> counter_{0};
  std::atomic<std::size_t> retries_{0};
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<endpoint_state> state_;
  std::size_t round_robin_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace cai
