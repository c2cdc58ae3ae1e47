/// @file train/callbacks.hpp
/// Progress of a training run through callback policies, found by traits as ensmallen does: a trainer's
/// `train(data, callbacks...)` accepts any number of callback objects, and calls each member that the
/// callback has, skipping those it lacks:
///
///  - `void on_begin(const train_progress&)`: before the first step of this run (after a resume, the
///    progress already counts the steps done before);
///  - `void on_step(const train_progress&)` or `bool on_step(const train_progress&)`: after every
///    optimizer step; returning `true` asks the trainer to stop after this step (early stopping);
///  - `void on_checkpoint(const train_progress&, const std::filesystem::path&)`: after a checkpoint;
///  - `void on_end(const train_progress&)`: after the last step.
///
/// With no callback given, a trainer uses `progress_bar`: a bar redrawn in place on a terminal (step,
/// loss, tokens/s, time left), plain lines (every `every` steps and the last) when stderr is not a
/// terminal, as in a CI log.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

namespace cai {

/// What a trainer reports after each step.
struct train_progress {
  std::string_view phase;        ///< "sft", "preference", "dpo", "ppo"
  std::size_t step = 0;          ///< optimizer steps done, counting those before a resume
  std::size_t total_steps = 0;   ///< planned optimizer steps (0: unknown)
  double loss = 0.0;             ///< the mean loss of this step
  std::size_t tokens = 0;        ///< tokens processed in this run so far
  double elapsed_seconds = 0.0;  ///< wall time of this run so far
  /// Further numbers of the step ("accuracy", "margin", "kl", "learning_rate", ...).
  std::map<std::string, double> metrics;

  /// Tokens per second of this run. @return 0 before the first second.
  [[nodiscard]] double tokens_per_second() const noexcept {
    return elapsed_seconds > 0.0 ? static_cast<double>(tokens) / elapsed_seconds : 0.0;
  }
};

namespace detail {

template <class C>
concept has_on_begin = requires(C& c, const train_progress& p) { c.on_begin(p); };
template <class C>
concept has_on_step = requires(C& c, const train_progress& p) { c.on_step(p); };
template <class C>
concept has_on_checkpoint = requires(C& c, const train_progress& p, const std::filesystem::path& d) {
  c.on_checkpoint(p, d);
};
template <class C>
concept has_on_end = requires(C& c, const train_progress& p) { c.on_end(p); };

}  // namespace detail

/// Calls `on_begin` of every callback that has it.
template <class... Callbacks>
void notify_begin(const train_progress& p, Callbacks&... cbs) {
  auto one = [&p](auto& cb) {
    if constexpr (detail::has_on_begin<std::remove_cvref_t<decltype(cb)>>) cb.on_begin(p);
  };
  (one(cbs), ...);
}

/// Calls `on_step` of every callback that has it. @return true when one of them asks to stop.
template <class... Callbacks>
bool notify_step(const train_progress& p, Callbacks&... cbs) {
  bool stop = false;
  auto one = [&](auto& cb) {
    using C = std::remove_cvref_t<decltype(cb)>;
    if constexpr (detail::has_on_step<C>) {
      if constexpr (std::same_as<decltype(cb.on_step(p)), bool>)
        stop = cb.on_step(p) || stop;
      else
        cb.on_step(p);
    }
  };
  (one(cbs), ...);
  return stop;
}

/// Calls `on_checkpoint` of every callback that has it.
template <class... Callbacks>
void notify_checkpoint(const train_progress& p, const std::filesystem::path& dir, Callbacks&... cbs) {
  auto one = [&](auto& cb) {
    if constexpr (detail::has_on_checkpoint<std::remove_cvref_t<decltype(cb)>>) cb.on_checkpoint(p, dir);
  };
  (one(cbs), ...);
}

/// Calls `on_end` of every callback that has it.
template <class... Callbacks>
void notify_end(const train_progress& p, Callbacks&... cbs) {
  auto one = [&](auto& cb) {
    if constexpr (detail::has_on_end<std::remove_cvref_t<decltype(cb)>>) cb.on_end(p);
  };
  (one(cbs), ...);
}

/// The default callback: a progress bar on a terminal, plain lines otherwise (see the file comment).
class progress_bar {
 public:
  /// @param out where to write (stderr by default). @param every lines are written every `every` steps
  /// when `out` is not a terminal (and always for the last step).
  explicit progress_bar(std::FILE* out = stderr, std::size_t every = 10)
      : out_(out), every_(every == 0 ? 1 : every) {
#if defined(__unix__) || defined(__APPLE__)
    terminal_ = out_ != nullptr && ::isatty(::fileno(out_)) == 1;
#endif
  }

  /// Forces the plain-line form (tests) or the bar.
  void set_terminal(bool terminal) noexcept { terminal_ = terminal; }

  void on_step(const train_progress& p) {
    if (out_ == nullptr) return;
    const bool last = p.total_steps != 0 && p.step >= p.total_steps;
    if (terminal_) {
      std::string line = "\r" + std::string(p.phase) + " " + bar(p) + " " + numbers(p);
      std::fputs(line.c_str(), out_);
      if (last) std::fputc('\n', out_);
      std::fflush(out_);
    } else if (p.step % every_ == 0 || last) {
      std::string line = std::string(p.phase) + " " + numbers(p) + "\n";
      std::fputs(line.c_str(), out_);
      std::fflush(out_);
    }
  }

  void on_end(const train_progress& p) {
    if (terminal_ && out_ != nullptr && !(p.total_steps != 0 && p.step >= p.total_steps)) std::fputc('\n', out_);
  }

  /// "step 12/100 loss 1.2345 1234 tok/s 0:42 left" (the words a line and the bar show).
  [[nodiscard]] static std::string numbers(const train_progress& p) {
    char buffer[160];
    std::string s = "step " + std::to_string(p.step);
    if (p.total_steps != 0) s += "/" + std::to_string(p.total_steps);
    std::snprintf(buffer, sizeof buffer, " loss %.4f", p.loss);
    s += buffer;
    for (const auto& [name, value] : p.metrics) {
      if (name == "run_steps") continue;
      std::snprintf(buffer, sizeof buffer, " %s %.4g", name.c_str(), value);
      s += buffer;
    }
    if (p.tokens != 0) {
      std::snprintf(buffer, sizeof buffer, " %.0f tok/s", p.tokens_per_second());
      s += buffer;
    }
    if (p.total_steps != 0 && p.step < p.total_steps && p.elapsed_seconds > 0.0 && p.step > first_step_of(p)) {
      const double per_step = p.elapsed_seconds / static_cast<double>(p.step - first_step_of(p));
      s += " " + duration(per_step * static_cast<double>(p.total_steps - p.step)) + " left";
    }
    return s;
  }

 private:
  // Progress of a resumed run counts earlier steps; the rate is measured over this run's, which the
  // trainers pass as the metric "run_steps" when they differ. Without it every step is this run's.
  static std::size_t first_step_of(const train_progress& p) {
    auto it = p.metrics.find("run_steps");
    if (it == p.metrics.end()) return 0;
    const auto run = static_cast<std::size_t>(it->second);
    return run > p.step ? 0 : p.step - run;
  }
  static std::string duration(double seconds) {
    const auto s = static_cast<long long>(seconds + 0.5);
    char buffer[32];
    if (s >= 3600)
      std::snprintf(buffer, sizeof buffer, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
    else
      std::snprintf(buffer, sizeof buffer, "%lld:%02lld", s / 60, s % 60);
    return buffer;
  }
  static std::string bar(const train_progress& p) {
    constexpr std::size_t width = 24;
    if (p.total_steps == 0) return "[" + std::string(width, '?') + "]";
    const std::size_t filled = std::min(width, p.step * width / p.total_steps);
    return "[" + std::string(filled, '#') + std::string(width - filled, ' ') + "]";
  }

  std::FILE* out_;
  std::size_t every_;
  bool terminal_ = false;
};

/// A callback that does nothing: pass it to silence the default progress bar.
struct quiet {};

}  // namespace cai
