// Benchmark of cai/train/: one training step of each trainer beside the same step in PyTorch
// (benchmarks/bench_training_peer.py), A/B interleaved, at 1 and 2 threads, with each side's peak resident
// memory (getrusage ru_maxrss).
//
// The model is the transformer benchmark's (benchmarks/bench_transformer.cpp): GPT-2 style, d_model 256,
// 6 layers, 8 heads, context 256, vocab 8192, fp32, cai's init_random(2022), written with cai::save_model
// and read by the peer. The optimizer is cai::adamw{.learning_rate = 1e-3f} (PyTorch's defaults
// otherwise; the peer runs torch.optim.AdamW with the same numbers, fused=True), gradients clipped to a
// global norm of 1 (train_options' default; the peer calls clip_grad_norm_). Batch 8:
//
//  - sft: `sft_trainer`, 8 sequences of a 64-token prompt and a 192-token response (256 tokens, no
//    padding), cross-entropy of the response tokens only. Rate: tokens (prompt included) per second.
//  - pm: `preference_trainer` on a `preference_model` (scalar head at the last token, Bradley-Terry loss,
//    p_chosen = 1), 8 pairs of 256-token sequences: one forward and backward over 16 rows. Pairs/s.
//  - dpo: `dpo_trainer` (sigmoid DPO, beta 0.1) against a frozen reference whose log-probabilities the
//    trainer computes before its first step (not timed, as in the peer), 8 triples of a 64-token prompt
//    and two 192-token responses: 16 rows of 256. Pairs/s.
//  - ppo: `ppo_trainer`, 8 prompts of 64 tokens, 64 sampled tokens each (temperature 1, no end token),
//    scored by a `preference_reward` (a preference model of the same shape) plus the policy's
//    log-probabilities and values and the reference's log-probabilities, then 2 epochs x 2 minibatches
//    of 4 rollouts (clipped policy and value losses, vf_coef 0.1, k1 KL penalty 0.05, GAE 1 / 0.95,
//    whitened advantages). Seconds of generation, scoring and training per iteration.
//
// Each side is timed through the trainer itself: cai's `train` runs 1 + steps steps (max_steps), and a
// callback's on_step records the clock after each; a step's time is the gap between two on_step calls,
// the first step (warm-up, buffers allocated) is dropped. That gap is the trainer's whole step: batch
// building, forward, loss, backward, the finiteness check of every gradient, clipping and AdamW; no
// checkpoint (checkpoint_dir empty) and no progress bar. What `train` does once per call (validating and
// building the rows, DPO's reference log-probabilities) is outside it. PPO's phases are cut inside the
// iteration by two more clocks: the reward callable records the end of generation, and the parameter
// set (full_parameters wrapped, see timed_parameters) records the first zero_grad after scoring, where
// training starts; scoring is the preference model, the policy's log-probabilities and values, the
// reference's log-probabilities, the KL-shaped rewards, GAE and whitening.
//
// Every measurement runs in its own process (the driver re-executes this program as a worker), so that
// OMP_NUM_THREADS takes effect and ru_maxrss is that measurement's own peak; the driver reports the median
// of each side over the interleaved repetitions (each repetition: the median of its timed steps).
//
//   cmake --build build --target cai_bench_training
//   ./build/benchmarks/cai_bench_training [--reps 3] [--steps 2] [--workload sft,pm,dpo,ppo] [--threads 1,2]
//   ./build/benchmarks/cai_bench_training --worker --workload sft --threads 1 [--steps 2]   (one JSON line)
//   ./build/benchmarks/cai_bench_training --save DIR   (writes the weights; then, by hand:
//       python benchmarks/bench_training_peer.py sft DIR 1 [2])
//   bash scripts/bench-training    (builds, finds PyTorch, prints the whole table)
//
// The peer's Python: CAI_BENCH_TORCH_PYTHON, else the Python CMake found. A peer that cannot be imported is
// reported as "peer not installed".
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <sys/resource.h>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include "bench_common.hpp"
#include "cai/model/load.hpp"
#include "cai/model/transformer.hpp"
#include "cai/train/adamw.hpp"
#include "cai/train/dpo.hpp"
#include "cai/train/parameters.hpp"
#include "cai/train/ppo.hpp"
#include "cai/train/preference_model.hpp"
#include "cai/train/sft.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
using json = nlohmann::json;
using cai_bench::env_or;
using cai_bench::median;
using cai_bench::peak_mib;
json run_json(const std::string& cmd) { return cai_bench::run_json(cmd, "cai-bench-training-out.txt"); }

// The benchmark's shapes (the transformer issue's model, the training issue's steps).
constexpr std::size_t vocab = 8192, context = 256, d_model = 256, layers = 6, heads = 8;
constexpr std::size_t batch = 8, seq = 256, prompt_len = 64, response_len = seq - prompt_len;
constexpr std::size_t ppo_prompt = 64, ppo_new = 64, ppo_epochs = 2, ppo_minibatches = 2;
constexpr std::uint64_t seed = 2022, head_seed = 7;

cai::transformer_config gpt2_config() { return cai::transformer_config::gpt2(vocab, context, d_model, layers, heads); }

cai::transformer<cai::cpu_t, float> gpt2_model() {
  cai::transformer<cai::cpu_t, float> m(gpt2_config());
  m.init_random(seed);
  return m;
}

/// The token ids both sides use: a fixed hash of the position (benchmarks/bench_common.py computes the
/// same).
std::int32_t token(std::uint64_t i, std::uint64_t salt) {
  return static_cast<std::int32_t>(((i * 2654435761ULL + salt) % 4294967296ULL) % vocab);
}
std::vector<std::int32_t> tokens(std::uint64_t from, std::size_t n, std::uint64_t salt) {
  std::vector<std::int32_t> v(n);
  for (std::size_t t = 0; t < n; ++t) v[t] = token(from + t, salt);
  return v;
}

double secs(clock_type::time_point a, clock_type::time_point b) { return std::chrono::duration<double>(b - a).count(); }

/// A callback that records the clock at the start of the run and after every step, with the step's loss.
struct step_clock {
  std::vector<clock_type::time_point> marks;
  std::vector<double> losses;
  void on_begin(const cai::train_progress&) { marks.push_back(clock_type::now()); }
  void on_step(const cai::train_progress& p) {
    marks.push_back(clock_type::now());
    losses.push_back(p.loss);
  }
  /// The steps' seconds, the first (warm-up) dropped.
  [[nodiscard]] std::vector<double> timed() const {
    std::vector<double> s;
    for (std::size_t i = 2; i < marks.size(); ++i) s.push_back(secs(marks[i - 1], marks[i]));
    return s;
  }
};

/// `full_parameters` that also records when training starts in a PPO iteration: the first zero_grad
/// after `arm()` (the reward callable arms it once scoring by the preference model is done).
struct timed_parameters {
  using backend_type = cai::cpu_t;
  using model_type = cai::transformer<cai::cpu_t, float>;
  using storage_type = cai::full_parameters<cai::cpu_t>::storage_type;

  explicit timed_parameters(model_type& m) : inner(m) {}
  cai::full_parameters<cai::cpu_t> inner;
  bool armed = false;
  std::vector<clock_type::time_point> training_starts;

  void arm() { armed = true; }
  storage_type& values() { return inner.values(); }
  storage_type& gradients() { return inner.gradients(); }
  model_type& model() { return inner.model(); }
  void zero_grad() {
    if (armed) {
      training_starts.push_back(clock_type::now());
      armed = false;
    }
    inner.zero_grad();
  }
  void before_forward() { inner.before_forward(); }
  void after_backward() { inner.after_backward(); }
  [[nodiscard]] std::string tensor_name(std::size_t i) const { return inner.tensor_name(i); }
};
static_assert(cai::trainable_parameters<timed_parameters>);

cai::train_options train_opts(std::size_t steps) {
  cai::train_options o;
  o.batch_size = batch;
  o.max_steps = 1 + steps;  // one warm-up step
  o.seed = 1;
  o.max_grad_norm = 1.0;
  return o;
}

json fill_steps(json r, const step_clock& clock) {
  const auto s = clock.timed();
  r["seconds"] = median(s);
  r["step_seconds"] = s;
  r["losses"] = clock.losses;
  return r;
}

/// One workload in this process; returns one JSON object.
json worker(const std::string& workload, int threads, std::size_t steps) {
  Eigen::setNbThreads(threads);
  const cai::adamw opt{.learning_rate = 1e-3f};
  json r;
  if (workload == "sft") {
    auto model = gpt2_model();
    cai::full_parameters<cai::cpu_t> params(model);
    cai::sft_options so;
    so.train = train_opts(steps);
    std::vector<cai::sft_sequence> data(batch);
    for (std::size_t b = 0; b < batch; ++b) {
      data[b].prompt = tokens(b * seq, prompt_len, 11);
      data[b].response = tokens(b * seq + prompt_len, response_len, 11);
    }
    cai::sft_trainer trainer(params, opt, so);
    step_clock clock;
    (void)trainer.train(data, clock);
    r = fill_steps(r, clock);
    r["items"] = batch * seq;  // tokens per step
  } else if (workload == "pm") {
    cai::preference_model<cai::cpu_t> pm(gpt2_model(), head_seed);
    cai::full_parameters<cai::cpu_t> params(pm.body());
    cai::preference_options po;
    po.train = train_opts(steps);
    std::vector<cai::preference_pair> pairs(batch);
    for (std::size_t b = 0; b < batch; ++b) {
      pairs[b].chosen = tokens(b * 2 * seq, seq, 22);
      pairs[b].rejected = tokens((b * 2 + 1) * seq, seq, 22);
      pairs[b].p_chosen = 1.0;
    }
    cai::preference_trainer trainer(pm, params, opt, po);
    step_clock clock;
    (void)trainer.train(pairs, clock);
    r = fill_steps(r, clock);
    r["items"] = batch;  // pairs per step
  } else if (workload == "dpo") {
    auto model = gpt2_model();
    auto reference = gpt2_model();
    cai::full_parameters<cai::cpu_t> params(model);
    cai::dpo_trainer_options dopt;
    dopt.train = train_opts(steps);
    dopt.dpo.beta = 0.1;
    std::vector<cai::dpo_example> data(batch);
    for (std::size_t b = 0; b < batch; ++b) {
      data[b].prompt = tokens(b * 3 * seq, prompt_len, 33);
      data[b].chosen = tokens(b * 3 * seq + seq, response_len, 33);
      data[b].rejected = tokens(b * 3 * seq + 2 * seq, response_len, 33);
    }
    cai::dpo_trainer trainer(params, reference, opt, dopt);
    step_clock clock;
    (void)trainer.train(data, clock);
    r = fill_steps(r, clock);
    r["items"] = batch;  // pairs per step
  } else if (workload == "ppo") {
    auto model = gpt2_model();
    auto reference = gpt2_model();
    cai::preference_model<cai::cpu_t> pm(gpt2_model(), head_seed);
    timed_parameters params(model);
    cai::ppo_options po;
    po.train = train_opts(steps);
    po.sampling.max_new_tokens = ppo_new;
    po.sampling.temperature = 1.0;
    po.ppo_epochs = ppo_epochs;
    po.minibatches = ppo_minibatches;
    std::vector<std::vector<std::int32_t>> prompts(batch);
    for (std::size_t b = 0; b < batch; ++b) prompts[b] = tokens(b * ppo_prompt, ppo_prompt, 44);
    const cai::preference_reward<cai::cpu_t> pm_reward{&pm, batch};
    std::vector<clock_type::time_point> generated;  // the end of each rollout's generation
    std::vector<double> response_tokens;
    auto reward = [&](std::span<const std::vector<std::int32_t>> p, std::span<const std::vector<std::int32_t>> resp) {
      generated.push_back(clock_type::now());
      double n = 0;
      for (const auto& x : resp) n += static_cast<double>(x.size());
      response_tokens.push_back(n);
      auto out = pm_reward(p, resp);
      params.arm();
      return out;
    };
    cai::ppo_trainer trainer(params, reference, opt, po);
    step_clock clock;
    (void)trainer.train(prompts, reward, clock);
    std::vector<double> gen, score, train, total;
    for (std::size_t i = 1; i + 1 < clock.marks.size(); ++i) {  // iteration i + 1; the first is the warm-up
      gen.push_back(secs(clock.marks[i], generated[i]));
      score.push_back(secs(generated[i], params.training_starts[i]));
      train.push_back(secs(params.training_starts[i], clock.marks[i + 1]));
      total.push_back(secs(clock.marks[i], clock.marks[i + 1]));
    }
    r["seconds"] = median(total);
    r["generation_seconds"] = median(gen);
    r["scoring_seconds"] = median(score);
    r["training_seconds"] = median(train);
    r["step_seconds"] = total;
    r["response_tokens"] = response_tokens;
    r["items"] = batch;  // rollouts per iteration
  } else {
    throw std::runtime_error("unknown workload '" + workload + "' (sft, pm, dpo or ppo)");
  }
  r["peak_mib"] = peak_mib();
  r["threads"] = threads;
  return r;
}

/// One side's measurements of one row of the table.
struct series {
  std::vector<double> seconds, mib;
  std::string note;                 // why there is no number
  std::vector<std::string> checks;  // per run
};

std::string fmt(double v, const char* f) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string join_unique(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s.empty() ? "-" : s;
}

std::string loss_check(const json& j) {
  if (!j.contains("losses") || j["losses"].size() < 2) return "-";
  return fmt(j["losses"][0].get<double>(), "%.5g") + "/" + fmt(j["losses"][1].get<double>(), "%.3g");
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string x;
  while (std::getline(in, x, ','))
    if (!x.empty()) out.push_back(x);
  return out;
}

// A row of the table: which workload, which field of the worker's JSON holds its seconds, and how many
// items (tokens, pairs, rollouts) the rate counts per step.
struct row_def {
  std::string workload, field, name, unit;
  double items;
};

int driver(const char* self, int reps, std::size_t steps, const std::vector<std::string>& workloads,
           const std::vector<int>& thread_counts) {
  const std::string torch_py = env_or("CAI_BENCH_TORCH_PYTHON", CAI_BENCH_PYTHON);
  const std::string dir = CAI_BENCH_DIR;

  // 1. The weights both sides load: the policy (= the reference) and the preference model (the same
  //    body, its head drawn with head_seed) in one directory.
  const auto weights = std::filesystem::temp_directory_path() / "cai-bench-training-gpt2";
  {
    cai::preference_model<cai::cpu_t> pm(gpt2_model(), head_seed);
    pm.save(weights);
    std::printf("GPT-2-style model: %zu parameters (d_model %zu, %zu layers, %zu heads, context %zu, vocab %zu), "
                "batch %zu, fp32, AdamW lr 1e-3, clip 1.0; %zu timed steps per process after one warm-up\n",
                pm.body().num_parameters(), d_model, layers, heads, context, vocab, batch, steps);
  }
  auto cai_cmd = [&](const std::string& w, int threads) {
    return "OMP_NUM_THREADS=" + std::to_string(threads) + " timeout 900 \"" + std::string(self) +
           "\" --worker --workload " + w + " --threads " + std::to_string(threads) + " --steps " + std::to_string(steps);
  };
  auto peer_cmd = [&](const std::string& w, int threads) {
    return "OMP_NUM_THREADS=" + std::to_string(threads) + " timeout 900 \"" + torch_py + "\" \"" + dir +
           "/bench_training_peer.py\" " + w + " \"" + weights.string() + "\" " + std::to_string(threads) + " " +
           std::to_string(steps);
  };

  const std::vector<row_def> rows{
      {"sft", "seconds", "SFT step", "tok/s", double(batch * seq)},
      {"pm", "seconds", "preference-model step", "pairs/s", double(batch)},
      {"dpo", "seconds", "DPO step", "pairs/s", double(batch)},
      {"ppo", "generation_seconds", "PPO generation (8 x 64 new tokens)", "s", 0},
      {"ppo", "scoring_seconds", "PPO scoring (PM + policy + reference)", "s", 0},
      {"ppo", "training_seconds", "PPO training (2 epochs x 2 minibatches)", "s", 0},
      {"ppo", "seconds", "PPO iteration (all three)", "s", 0},
  };
  std::map<std::pair<std::string, int>, series> cai_s, torch_s;  // (row name, threads)
  std::string torch_version;
  auto record = [&](series& s, const json& j, const row_def& row, bool check) {
    if (j.contains("error")) {
      s.note = j["error"].get<std::string>();
      return;
    }
    s.seconds.push_back(j[row.field].get<double>());
    s.mib.push_back(j["peak_mib"].get<double>());
    if (check) s.checks.push_back(loss_check(j));
  };

  // 2. Interleaved cai / PyTorch, repetition by repetition.
  for (int rep = 0; rep < reps; ++rep)
    for (int threads : thread_counts)
      for (const auto& w : workloads) {
        const json a = run_json(cai_cmd(w, threads));
        const json b = run_json(peer_cmd(w, threads));
        if (b.contains("version")) torch_version = b["version"].get<std::string>();
        for (const auto& row : rows)
          if (row.workload == w) {
            record(cai_s[{row.name, threads}], a, row, row.field == "seconds");
            record(torch_s[{row.name, threads}], b, row, row.field == "seconds");
          }
        auto brief = [](const json& j) {
          return j.contains("error") ? j["error"].get<std::string>() : fmt(j["seconds"].get<double>(), "%.3f s");
        };
        std::fprintf(stderr, "  repetition %d/%d, %d thread(s), %s: cai %s, PyTorch %s\n", rep + 1, reps, threads,
                     w.c_str(), brief(a).c_str(), brief(b).c_str());
      }

  // 3. The table. The ratio is cai's speed over PyTorch's (PyTorch's seconds over cai's): > 1, cai faster.
  std::printf("\nmedian of %d interleaved repetitions (each the median of %zu steps); peak RSS in MiB; PyTorch %s\n\n",
              reps, steps, torch_version.empty() ? "(not measured)" : torch_version.c_str());
  std::printf("| step | threads | cai | PyTorch | cai/PyTorch | cai MiB | PyTorch MiB | loss steps 1/2 (cai; PyTorch) |\n");
  std::printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n");
  for (const auto& row : rows) {
    if (std::find(workloads.begin(), workloads.end(), row.workload) == workloads.end()) continue;
    for (int threads : thread_counts) {
      const auto& a = cai_s[{row.name, threads}];
      const auto& b = torch_s[{row.name, threads}];
      auto value = [&](const series& s) {
        if (s.seconds.empty()) return s.note.empty() ? std::string("-") : s.note;
        const double t = median(s.seconds);
        return row.items > 0 ? fmt(row.items / t, row.items >= 100 ? "%.0f" : "%.2f") + " " + row.unit : fmt(t, "%.3f s");
      };
      const std::string ratio = a.seconds.empty() || b.seconds.empty()
                                    ? "-"
                                    : fmt(median(b.seconds) / median(a.seconds), "%.2f");
      auto mib = [](const series& s) { return s.mib.empty() ? std::string("-") : fmt(median(s.mib), "%.0f"); };
      const std::string check = row.field == "seconds" && row.workload != "ppo"
                                    ? join_unique(a.checks) + "; " + join_unique(b.checks)
                                    : "-";
      std::printf("| %s | %d | %s | %s | %s | %s | %s | %s |\n", row.name.c_str(), threads, value(a).c_str(),
                  value(b).c_str(), ratio.c_str(), mib(a).c_str(), mib(b).c_str(), check.c_str());
    }
  }
  std::printf("\ncai/PyTorch: PyTorch's seconds per step over cai's (above 1: cai is faster). The loss check "
              "shows both sides compute the same step: the loss before the first update and after it.\n");
  std::filesystem::remove_all(weights);
  return 0;
}

}  // namespace

int main(int argc, char** argv) try {
  bool is_worker = false;
  int reps = 3;
  std::size_t steps = 2;
  std::string workload = "sft,pm,dpo,ppo", threads = "1,2", save_dir;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error("option " + a + " needs a value");
      return argv[++i];
    };
    if (a == "--worker") is_worker = true;
    else if (a == "--save") save_dir = next();
    else if (a == "--reps") reps = std::max(1, std::atoi(next().c_str()));
    else if (a == "--steps") steps = static_cast<std::size_t>(std::max(1, std::atoi(next().c_str())));
    else if (a == "--workload") workload = next();
    else if (a == "--threads") threads = next();
    else throw std::runtime_error("unknown option '" + a + "'; options: --reps N --steps N --workload sft,pm,dpo,ppo "
                                  "--threads 1,2 [--worker] [--save DIR]");
  }
  std::vector<int> thread_counts;
  for (const auto& t : split(threads)) thread_counts.push_back(std::max(1, std::atoi(t.c_str())));
  if (!save_dir.empty()) {  // the weights the peer reads, for running it by hand
    cai::preference_model<cai::cpu_t> pm(gpt2_model(), head_seed);
    pm.save(save_dir);
    return 0;
  }
  if (is_worker) {
    std::printf("%s\n", worker(workload, thread_counts.at(0), steps).dump().c_str());
    return 0;
  }
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return driver(ec ? argv[0] : self.c_str(), reps, steps, split(workload), thread_counts);
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_training: %s\n", e.what());
  return 1;
}
