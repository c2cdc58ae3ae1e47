// Benchmark of cai/model/transformer.hpp: tokens per second of cai's native transformer beside PyTorch
// (benchmarks/bench_transformer_peer.py) and llama.cpp (benchmarks/bench_smollm2_peer.py), A/B
// interleaved, at 1 and 2 threads, with each side's peak resident memory (getrusage ru_maxrss).
//
// 1. A GPT-2-style model (d_model 256, 6 layers, 8 heads, context 256, vocab 8192, fp32), batch 8 x 256:
//    a training step (forward + backward + optimizer step), a forward pass, and KV-cached greedy
//    generation (prompt 64, 128 new tokens, batch 8). Both sides run the same weights (cai's
//    init_random, written with cai::save_model and read by the peer from model.safetensors) and the
//    same token ids. The optimizer is cai::adamw (learning rate 1e-3, PyTorch's defaults otherwise: betas
//    0.9 and 0.999, eps 1e-8, weight decay 0.01); PyTorch runs torch.optim.AdamW with the same settings,
//    fused=True (its fastest implementation on the CPU: at one thread 16 ms a step here against 48 for
//    the per-tensor loop and 82 for foreach). The training step's rate is also given as a
//    fraction of the fp32 matrix-product rate measured at the same thread count (an Eigen
//    1024 x 1024 x 1024 float product, the library cai's kernels use; PyTorch's against its own
//    1024^3 torch.matmul).
// 2. SmolLM2-135M-Instruct (the Q4_1 GGUF of the model cache; cai expands it to fp32, and in a second
//    run decodes with 8-bit weights, transformer::quantize_for_decoding, the quantisation inside the
//    timing) generating 128
//    greedy tokens from a 128-token prompt at batch 1 and batch 8, beside llama.cpp (llama-cpp-python)
//    on the same file, the same token ids and the same thread count. llama-cpp-python's high-level API
//    has no batch: its batch 8 is 8 sequences one after another. Neither side stops at an end token.
//
// Every measurement runs in its own process (the driver re-executes this program as a worker), so that
// OMP_NUM_THREADS takes effect and ru_maxrss is that measurement's own peak. Each process warms up once
// and times the rest; the driver reports the median over the interleaved repetitions.
//
//   cmake --build build --target cai_bench_transformer
//   ./build/benchmarks/cai_bench_transformer [repetitions = 3] [smollm2 repetitions = 2]
//   bash scripts/bench          (builds, finds the Pythons of the peers, prints the whole table)
//
// The peers' Pythons: CAI_BENCH_TORCH_PYTHON and CAI_BENCH_LLAMA_PYTHON, else the Python CMake found. A
// peer that cannot be imported is reported as "peer not installed".
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <sys/resource.h>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include "bench_common.hpp"
#include "cai/model/load.hpp"
#include "cai/model/model_cache.hpp"
#include "cai/model/native_model.hpp"
#include "cai/model/transformer.hpp"
#include "cai/train/adamw.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
using json = nlohmann::json;
using cai_bench::env_or;
using cai_bench::median;
using cai_bench::peak_mib;
json run_json(const std::string& cmd) { return cai_bench::run_json(cmd, "cai-bench-transformer-out.txt"); }

// The benchmark's shapes (the issue's).
constexpr std::size_t vocab = 8192, context = 256, d_model = 256, layers = 6, heads = 8;
constexpr std::size_t batch = 8, seq = 256;
constexpr std::size_t gen_prompt = 64, gen_new = 128;
constexpr std::size_t smol_prompt = 128, smol_new = 128;
constexpr std::uint64_t seed = 2022;

cai::transformer_config gpt2_config() { return cai::transformer_config::gpt2(vocab, context, d_model, layers, heads); }

/// The token ids both sides use: a fixed hash of the position (benchmarks/bench_transformer_peer.py
/// and bench_smollm2_peer.py compute the same).
std::int32_t token(std::uint64_t i, std::uint64_t salt, std::uint64_t v) {
  return static_cast<std::int32_t>(((i * 2654435761ULL + salt) % 4294967296ULL) % v);
}

double seconds_since(clock_type::time_point t) { return std::chrono::duration<double>(clock_type::now() - t).count(); }

/// A checksum of generated tokens, (slot, step) weighted, that the peers compute the same way.
std::uint64_t token_checksum(const std::vector<std::vector<std::int32_t>>& out) {
  std::uint64_t h = 0;
  for (std::size_t b = 0; b < out.size(); ++b)
    for (std::size_t t = 0; t < out[b].size(); ++t)
      h = (h + static_cast<std::uint64_t>(out[b][t]) * (b * 131 + t + 1)) % 1000000007ULL;
  return h;
}

std::int32_t argmax_row(const float* row, std::size_t V) {
  return static_cast<std::int32_t>(std::max_element(row, row + V) - row);
}

/// Greedy KV-cached generation: all prompts prefilled in one call, then one token per sequence per
/// step; `new_tokens` tokens per sequence, no end-token stop. Returns the generated ids.
std::vector<std::vector<std::int32_t>> greedy(cai::transformer<cai::cpu_t, float>& model,
                                              const std::vector<std::vector<std::int32_t>>& prompts, std::size_t new_tokens) {
  const std::size_t B = prompts.size(), V = model.config().vocab_size;
  cai::kv_cache<cai::cpu_t, float> cache(model.config(), B, prompts[0].size() + new_tokens);
  std::vector<cai::cache_segment> segs(B);
  for (std::size_t b = 0; b < B; ++b) segs[b] = {b, std::span<const std::int32_t>(prompts[b])};
  auto logits = model.forward_cached(cache, segs, cai::cached_logits::last);
  std::vector<std::vector<std::int32_t>> out(B);
  for (std::size_t b = 0; b < B; ++b) out[b].push_back(argmax_row(logits.data() + b * V, V));
  std::vector<std::int32_t> next(B);
  for (std::size_t step = 1; step < new_tokens; ++step) {
    for (std::size_t b = 0; b < B; ++b) {
      next[b] = out[b].back();
      segs[b] = {b, std::span<const std::int32_t>(&next[b], 1)};
    }
    logits = model.forward_cached(cache, segs);
    for (std::size_t b = 0; b < B; ++b) out[b].push_back(argmax_row(logits.data() + b * V, V));
  }
  return out;
}

/// One measurement in this process; prints one JSON line.
json worker(const std::string& task, int threads, std::size_t gen_batch) {
  Eigen::setNbThreads(threads);
  json r;
  if (task == "gemm") {
    const Eigen::Index n = 1024;
    Eigen::MatrixXf a = Eigen::MatrixXf::Random(n, n), b = Eigen::MatrixXf::Random(n, n), c(n, n);
    c.noalias() = a * b;  // warm-up
    std::vector<double> s;
    for (int i = 0; i < 5; ++i) {
      const auto t = clock_type::now();
      c.noalias() = a * b;
      s.push_back(seconds_since(t));
    }
    r["gflops"] = 2.0 * n * n * n / median(s) / 1e9;
    r["check"] = c(0, 0);
  } else if (task == "train" || task == "forward" || task == "generate") {
    cai::transformer<cai::cpu_t, float> model(gpt2_config());
    model.init_random(seed);
    if (task == "generate") {
      std::vector<std::vector<std::int32_t>> prompts(batch, std::vector<std::int32_t>(gen_prompt));
      for (std::size_t b = 0; b < batch; ++b)
        for (std::size_t t = 0; t < gen_prompt; ++t) prompts[b][t] = token(b * gen_prompt + t, 777, vocab);
      (void)greedy(model, prompts, 8);  // warm-up
      std::vector<double> s;
      std::vector<std::vector<std::int32_t>> out;
      for (int i = 0; i < 2; ++i) {
        const auto t = clock_type::now();
        out = greedy(model, prompts, gen_new);
        s.push_back(seconds_since(t));
      }
      r["seconds"] = median(s);
      r["tokens"] = batch * gen_new;
      r["checksum"] = token_checksum(out);
    } else {
      std::vector<std::int32_t> ids(batch * seq), targets(batch * seq);
      for (std::size_t b = 0; b < batch; ++b)
        for (std::size_t t = 0; t < seq; ++t) {
          ids[b * seq + t] = token(b * (seq + 1) + t, 12345, vocab);
          targets[b * seq + t] = token(b * (seq + 1) + t + 1, 12345, vocab);
        }
      const bool train = task == "train";
      cai::adamw opt{.learning_rate = 1e-3f};
      cai::adamw::state<std::vector<float>> state(opt, model.parameter_storage());
      std::vector<double> s;
      double first_loss = 0;
      const int iters = train ? 3 : 4;  // the first is the warm-up
      for (int i = 0; i < iters; ++i) {
        const auto t = clock_type::now();
        if (train) {
          const float loss = model.forward_loss(ids, targets, batch, seq);
          model.zero_grad();
          model.backward_loss();
          state.update(model.parameter_storage(), model.gradient_storage());
          if (i == 0) first_loss = loss;
        } else {
          const auto logits = model.forward(ids, batch, seq);
          if (i == 0) first_loss = logits[0];
        }
        if (i > 0) s.push_back(seconds_since(t));
      }
      r["seconds"] = median(s);
      r["tokens"] = batch * seq;
      r[train ? "loss" : "logit0"] = first_loss;
    }
  } else if (task == "smollm2" || task == "smollm2-q8") {
    auto nm = cai::native_model<>::load(cai::smollm2_gguf_path());
    auto& model = nm.model();
    const std::size_t V = model.config().vocab_size;
    std::vector<std::vector<std::int32_t>> prompts(gen_batch, std::vector<std::int32_t>(smol_prompt));
    for (std::size_t b = 0; b < gen_batch; ++b)
      for (std::size_t t = 0; t < smol_prompt; ++t) prompts[b][t] = token(b * smol_prompt + t, 4242, V);
    const bool q8 = task == "smollm2-q8";
    if (q8) model.quantize_for_decoding();
    (void)greedy(model, prompts, 4);  // warm-up
    const auto t = clock_type::now();
    // the 8-bit weights are made again inside the timing, as native_model::generate makes them per call
    if (q8) model.quantize_for_decoding();
    const auto out = greedy(model, prompts, smol_new);
    r["seconds"] = seconds_since(t);
    r["tokens"] = gen_batch * smol_new;
    r["checksum"] = token_checksum(out);
  } else {
    throw std::runtime_error("unknown worker task '" + task + "'");
  }
  r["peak_mib"] = peak_mib();
  return r;
}

struct series {
  std::vector<double> rate, mib;
  std::string note;          // why there is no number
  std::vector<std::string> checks;  // loss / checksum of each run
  void add(const json& j, double tokens_per_s) {
    rate.push_back(tokens_per_s);
    mib.push_back(j["peak_mib"].get<double>());
  }
};

std::string cell(const series& s, const char* unit = "") {
  if (s.rate.empty()) return s.note.empty() ? "-" : s.note;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.0f%s", median(s.rate), unit);
  return buf;
}

std::string mib_cell(const series& s) {
  if (s.mib.empty()) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f", median(s.mib));
  return buf;
}

std::string ratio_cell(const series& a, const series& b) {
  if (a.rate.empty() || b.rate.empty()) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", median(a.rate) / median(b.rate));
  return buf;
}

std::string join_unique(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
  return s;
}

/// The floating-point operations of one training step, as a count of matrix-product work: 6 per
/// matrix parameter per token (forward 2, backward 4; the tied head counted once as a product) plus
/// causal attention (QK^T and AV: 2 * 2 * T/2 * C per token per layer forward, times 3).
double train_flops() {
  const double C = d_model, F = 4.0 * d_model, L = layers, V = vocab, T = seq, N = batch * seq;
  const double matrix_params = L * (3 * C * C + C * C + 2 * C * F) + V * C;
  return 6.0 * matrix_params * N + 3.0 * L * 2.0 * 2.0 * (T / 2.0) * C * N;
}

int driver(const char* self, int reps, int smol_reps) {
  const std::string torch_py = env_or("CAI_BENCH_TORCH_PYTHON", CAI_BENCH_PYTHON);
  const std::string llama_py = env_or("CAI_BENCH_LLAMA_PYTHON", CAI_BENCH_PYTHON);
  const std::string dir = CAI_BENCH_DIR;
  const std::vector<int> thread_counts{1, 2};

  // 1. The weights both sides load.
  const auto weights = std::filesystem::temp_directory_path() / "cai-bench-transformer-gpt2";
  {
    cai::transformer<cai::cpu_t, float> model(gpt2_config());
    model.init_random(seed);
    cai::save_model(model, weights);
    std::printf("GPT-2-style model: %zu parameters (d_model %zu, %zu layers, %zu heads, context %zu, vocab %zu), "
                "batch %zu, fp32; weights in %s\n",
                model.num_parameters(), d_model, layers, heads, context, vocab, batch, weights.string().c_str());
  }
  auto cai_cmd = [&](int threads, const std::string& args) {
    return "OMP_NUM_THREADS=" + std::to_string(threads) + " \"" + std::string(self) + "\" --worker " + args + " " +
           std::to_string(threads);
  };
  auto peer_cmd = [&](const std::string& py, const std::string& script, int threads, const std::string& args) {
    // A peer run is stopped after 5 minutes: ggml's spinning threads can take that long for 128
    // tokens when another process holds one of the cores they spin on.
    return "OMP_NUM_THREADS=" + std::to_string(threads) + " timeout 300 \"" + py + "\" \"" + dir + "/" + script + "\" " +
           args + " " + std::to_string(threads);
  };

  // 2. GPT-2-style: interleaved cai / PyTorch, repetition by repetition.
  const std::vector<std::string> tasks{"train", "forward", "generate"};
  std::map<std::pair<std::string, int>, series> cai_s, torch_s;
  std::map<int, std::vector<double>> gemm, torch_gemm;  // GFLOP/s
  std::string torch_version;
  for (int rep = 0; rep < reps; ++rep) {
    for (int threads : thread_counts) {
      const json g = run_json(cai_cmd(threads, "gemm"));
      if (g.contains("gflops")) gemm[threads].push_back(g["gflops"].get<double>());
      const json tg = run_json(peer_cmd(torch_py, "bench_transformer_peer.py", threads, "gemm \"" + weights.string() + "\""));
      if (tg.contains("gflops")) torch_gemm[threads].push_back(tg["gflops"].get<double>());
      for (const auto& task : tasks) {
        auto& a = cai_s[{task, threads}];
        auto& b = torch_s[{task, threads}];
        const json ja = run_json(cai_cmd(threads, task));
        if (ja.contains("error")) {
          a.note = ja["error"].get<std::string>();
        } else {
          a.add(ja, ja["tokens"].get<double>() / ja["seconds"].get<double>());
          a.checks.push_back(ja.contains("loss")       ? std::to_string(ja["loss"].get<double>()).substr(0, 7)
                             : ja.contains("checksum") ? std::to_string(ja["checksum"].get<std::uint64_t>())
                                                       : std::to_string(ja["logit0"].get<double>()).substr(0, 9));
        }
        if (!b.note.empty()) continue;  // a peer that failed once is not retried
        const json jb = run_json(peer_cmd(torch_py, "bench_transformer_peer.py", threads,
                                          task + " \"" + weights.string() + "\""));
        if (jb.contains("error")) {
          b.note = jb["error"].get<std::string>();
        } else {
          b.add(jb, jb["tokens"].get<double>() / jb["seconds"].get<double>());
          torch_version = jb.value("version", "");
          b.checks.push_back(jb.contains("loss")       ? std::to_string(jb["loss"].get<double>()).substr(0, 7)
                             : jb.contains("checksum") ? std::to_string(jb["checksum"].get<std::uint64_t>())
                                                       : std::to_string(jb["logit0"].get<double>()).substr(0, 9));
        }
      }
      std::fprintf(stderr, "  repetition %d/%d, %d thread(s) done\n", rep + 1, reps, threads);
    }
  }

  // 3. SmolLM2-135M-Instruct: interleaved cai / llama.cpp.
  std::map<std::pair<int, int>, series> smol_cai, smol_q8, smol_llama;  // (batch, threads)
  std::string llama_version;
  const bool have_gguf = std::filesystem::exists(cai::smollm2_gguf_path());
  if (have_gguf) {
    for (int rep = 0; rep < smol_reps; ++rep)
      for (int threads : thread_counts)
        for (int b : {1, 8}) {
          auto& a = smol_cai[{b, threads}];
          auto& p = smol_llama[{b, threads}];
          const std::pair<series*, std::string> runs[] = {{&a, "smollm2 "}, {&smol_q8[{b, threads}], "smollm2-q8 "}};
          for (const auto& [s, task] : runs) {
            const json ja = run_json(cai_cmd(threads, task + std::to_string(b)));
            if (ja.contains("error")) {
              s->note = ja["error"].get<std::string>();
            } else {
              s->add(ja, ja["tokens"].get<double>() / ja["seconds"].get<double>());
              s->checks.push_back(std::to_string(ja["checksum"].get<std::uint64_t>()));
            }
          }
          if (!p.note.empty()) continue;
          const json jp = run_json(peer_cmd(llama_py, "bench_smollm2_peer.py", threads,
                                            "\"" + cai::smollm2_gguf_path().string() + "\" " + std::to_string(b)));
          if (jp.contains("error")) {
            p.note = jp["error"].get<std::string>();
          } else {
            p.add(jp, jp["tokens"].get<double>() / jp["seconds"].get<double>());
            p.checks.push_back(std::to_string(jp["checksum"].get<std::uint64_t>()));
            llama_version = jp.value("version", "");
          }
          std::fprintf(stderr, "  SmolLM2 repetition %d/%d, %d thread(s), batch %d done\n", rep + 1, smol_reps, threads, b);
        }
  }

  // 4. The table.
  std::printf("\nGPT-2-style model, tokens/s (median of %d interleaved repetitions), peak RSS in MiB; "
              "PyTorch %s\n\n",
              reps, torch_version.empty() ? "(not measured)" : torch_version.c_str());
  std::printf("| workload | threads | cai tok/s | PyTorch tok/s | cai/PyTorch | cai MiB | PyTorch MiB | check (cai / PyTorch) |\n");
  std::printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n");
  const std::map<std::string, std::string> names{
      {"train", "training step (fwd+bwd+AdamW)"}, {"forward", "forward pass"},
      {"generate", "greedy generation, KV cache (64+128)"}};
  for (const auto& task : tasks)
    for (int threads : thread_counts) {
      const auto& a = cai_s[{task, threads}];
      const auto& b = torch_s[{task, threads}];
      std::printf("| %s | %d | %s | %s | %s | %s | %s | %s / %s |\n", names.at(task).c_str(), threads, cell(a).c_str(),
                  cell(b).c_str(), ratio_cell(a, b).c_str(), mib_cell(a).c_str(), mib_cell(b).c_str(),
                  join_unique(a.checks).c_str(), join_unique(b.checks).c_str());
    }
  std::printf("\nchecks: training = loss of the first step; forward = logit[0]; generation = checksum of the generated "
              "ids (equal: the same tokens)\n");
  std::printf("\nfp32 matrix-product rate (Eigen 1024^3 float) and the training step's share of it "
              "(%.1f GFLOP per step):\n\n",
              train_flops() / 1e9);
  std::printf("| threads | Eigen GEMM GFLOP/s | cai step GFLOP/s | cai fraction | PyTorch GEMM GFLOP/s | PyTorch step GFLOP/s | PyTorch fraction of its GEMM |\n");
  std::printf("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  for (int threads : thread_counts) {
    const double g = median(gemm[threads]);  // the reference rate of cai's step: Eigen, as cai's kernels
    const auto& a = cai_s[{"train", threads}];
    const auto& b = torch_s[{"train", threads}];
    const double fa = a.rate.empty() ? 0 : median(a.rate) / (batch * seq) * train_flops() / 1e9;
    const double fb = b.rate.empty() ? 0 : median(b.rate) / (batch * seq) * train_flops() / 1e9;
    auto num = [](double v, const char* fmt) {
      if (v <= 0) return std::string("-");
      char buf[32];
      std::snprintf(buf, sizeof buf, fmt, v);
      return std::string(buf);
    };
    const double tgr = median(torch_gemm[threads]);
    std::printf("| %d | %s | %s | %s | %s | %s | %s |\n", threads, num(g, "%.1f").c_str(), num(fa, "%.1f").c_str(),
                num(g > 0 ? fa / g : 0, "%.2f").c_str(), num(tgr, "%.1f").c_str(), num(fb, "%.1f").c_str(),
                num(tgr > 0 ? fb / tgr : 0, "%.2f").c_str());
  }
  if (!have_gguf) {
    std::printf("\nSmolLM2 skipped: no %s (bash scripts/fetch-smollm2)\n", cai::smollm2_gguf_path().string().c_str());
  } else {
    std::printf("\nSmolLM2-135M-Instruct (Q4_1 GGUF; cai expands it to fp32, and cai q8 decodes with 8-bit blocks "
                "made from those, the quantisation timed), greedy, prompt %zu, %zu new tokens, new tokens/s including "
                "the prefill (median of %d); llama-cpp-python %s, batch 8 = 8 sequences one after another\n\n",
                smol_prompt, smol_new, smol_reps, llama_version.empty() ? "(not measured)" : llama_version.c_str());
    std::printf("| batch | threads | cai tok/s | cai q8 tok/s | llama.cpp tok/s | cai/llama.cpp | cai q8/llama.cpp | "
                "cai MiB | cai q8 MiB | llama.cpp MiB | checksum (cai / cai q8 / llama.cpp) |\n");
    std::printf("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n");
    for (int b : {1, 8})
      for (int threads : thread_counts) {
        const auto& a = smol_cai[{b, threads}];
        const auto& q = smol_q8[{b, threads}];
        const auto& p = smol_llama[{b, threads}];
        std::printf("| %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s / %s |\n", b, threads, cell(a).c_str(),
                    cell(q).c_str(), cell(p).c_str(), ratio_cell(a, p).c_str(), ratio_cell(q, p).c_str(),
                    mib_cell(a).c_str(), mib_cell(q).c_str(), mib_cell(p).c_str(), join_unique(a.checks).c_str(),
                    join_unique(q.checks).c_str(), join_unique(p.checks).c_str());
      }
  }
  std::filesystem::remove_all(weights);
  return 0;
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc > 1 && std::string(argv[1]) == "--worker") {
    if (argc < 4) throw std::runtime_error("usage: --worker TASK [BATCH] THREADS");
    const std::string task = argv[2];
    const std::size_t gen_batch = argc > 4 ? static_cast<std::size_t>(std::atoi(argv[3])) : 1;
    const int threads = std::max(1, std::atoi(argv[argc - 1]));
    std::printf("%s\n", worker(task, threads, gen_batch).dump().c_str());
    return 0;
  }
  const int reps = argc > 1 ? std::max(1, std::atoi(argv[1])) : 3;
  const int smol_reps = argc > 2 ? std::max(0, std::atoi(argv[2])) : 2;
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return driver(ec ? argv[0] : self.c_str(), reps, smol_reps);
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_transformer: %s\n", e.what());
  return 1;
}
