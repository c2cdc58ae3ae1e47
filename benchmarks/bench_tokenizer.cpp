// Benchmark of cai/model/tokenizer.hpp: byte-level BPE encoding speed, in MB/s of UTF-8 input, with
// GPT-2's vocabulary (and SmolLM2's, when scripts/fetch-smollm2 and tests/data/tokenizer/gen_expected.py
// have put its tokenizer.json in the model cache) on about 3 MB of English dialogue (the texts of the
// shared hh-rlhf file), beside Hugging Face tokenizers (Rust, through Python:
// benchmarks/bench_tokenizer.py) on the same documents. cai and HF runs are interleaved, at 1 thread and
// at 2 threads; the median of the runs is reported. The token counts of both are printed too: they must
// be equal.
//
//   cmake --build build --target cai_bench_tokenizer && ./build/benchmarks/cai_bench_tokenizer [runs]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cai/data/gzip.hpp"
#include "cai/model/tokenizer.hpp"

namespace {

struct peer_result {
  bool ok = false;
  double seconds = 0;
  std::size_t tokens = 0;
  std::string why;
};

/// Runs the Python peer once; its last output line is JSON.
peer_result run_peer(const std::filesystem::path& docs, const std::string& files, int threads) {
  const std::filesystem::path out = std::filesystem::temp_directory_path() / "cai-bench-tokenizer-peer.txt";
  const std::string cmd = std::string(CAI_BENCH_PYTHON) + " \"" + CAI_BENCH_DIR + "/bench_tokenizer.py\" \"" + docs.string() +
                          "\" " + std::to_string(threads) + " " + files + " > \"" + out.string() + "\" 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream in(out);
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  peer_result r;
  if (rc != 0) {
    r.why = last.empty() ? "the peer script failed" : last;
    return r;
  }
  try {
    const auto j = nlohmann::json::parse(last);
    r.seconds = j["seconds"].get<double>();
    r.tokens = j["tokens"].get<std::size_t>();
    r.ok = true;
  } catch (const std::exception& e) {
    r.why = std::string("unreadable peer output: ") + last;
  }
  return r;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) try {
  const int runs = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
  const std::filesystem::path shared(CAI_SHARED_DATA_DIR);
  const std::filesystem::path gpt2 = shared / "gpt2-bpe";

  // 1. The documents: hh-rlhf "chosen" texts, about 3 MB.
  std::vector<std::string> docs;
  std::size_t bytes = 0;
  cai::for_each_gzip_line(shared / "hh-rlhf" / "harmless-base-test.jsonl.gz", [&](std::string_view line, std::size_t) {
    if (line.empty()) return;
    const auto j = nlohmann::json::parse(line);
    for (const char* k : {"chosen", "rejected"}) {
      docs.push_back(j[k].get<std::string>());
      bytes += docs.back().size();
    }
  });
  const std::filesystem::path docs_file = std::filesystem::temp_directory_path() / "cai-bench-tokenizer-docs.json";
  std::ofstream(docs_file, std::ios::binary) << nlohmann::json(docs).dump();
  const double mb = static_cast<double>(bytes) / 1e6;
  std::printf("corpus: %zu documents, %.2f MB (hh-rlhf harmless-base-test, chosen + rejected)\n", docs.size(), mb);

  // 2. The tokenizers, each with the files its HF peer loads.
  auto quoted = [](const std::filesystem::path& p) { return "\"" + p.string() + "\""; };
  std::vector<std::pair<std::string, std::string>> peers;  // name, peer arguments
  std::vector<cai::bpe_tokenizer> toks;
  auto t0 = std::chrono::steady_clock::now();
  toks.push_back(cai::bpe_tokenizer::from_gpt2_files(gpt2 / "encoder.json", gpt2 / "vocab.bpe"));
  peers.emplace_back("GPT-2", quoted(gpt2 / "encoder.json") + " " + quoted(gpt2 / "vocab.bpe"));
  std::printf("cai: GPT-2 vocabulary loaded in %.0f ms\n",
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  const char* cache_env = std::getenv("CAI_MODEL_CACHE");
  const char* home = std::getenv("HOME");
  const std::filesystem::path cache = cache_env && *cache_env ? std::filesystem::path(cache_env)
                                                              : std::filesystem::path(home ? home : ".") / ".cache" / "cai";
  const auto smol = cache / "SmolLM2-135M-Instruct.tokenizer.json";
  if (std::filesystem::exists(smol)) {
    t0 = std::chrono::steady_clock::now();
    toks.push_back(cai::bpe_tokenizer::from_tokenizer_json(smol));
    peers.emplace_back("SmolLM2", quoted(smol));
    std::printf("cai: SmolLM2 vocabulary loaded in %.0f ms\n",
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  } else {
    std::printf("SmolLM2 skipped: no %s (scripts/fetch-smollm2, then tests/data/tokenizer/gen_expected.py)\n",
                smol.string().c_str());
  }

  // 3. Interleaved runs: cai then HF, at 1 and 2 threads.
  for (std::size_t k = 0; k < toks.size(); ++k) {
    for (int threads : {1, 2}) {
      std::vector<double> cai_mbs, hf_mbs;
      std::size_t cai_tokens = 0, hf_tokens = 0;
      std::string peer_note;
      for (int r = 0; r < runs; ++r) {
        const auto a = std::chrono::steady_clock::now();
        const auto ids = toks[k].encode_batch(docs, static_cast<std::size_t>(threads));
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
        cai_mbs.push_back(mb / s);
        cai_tokens = 0;
        for (const auto& v : ids) cai_tokens += v.size();
        if (peer_note.empty()) {
          const peer_result p = run_peer(docs_file, peers[k].second, threads);
          if (p.ok) {
            hf_mbs.push_back(mb / p.seconds);
            hf_tokens = p.tokens;
          } else {
            peer_note = p.why;
          }
        }
      }
      std::printf("%-7s %d thread%s: cai %7.2f MB/s (median of %d, %zu tokens)", peers[k].first.c_str(), threads,
                  threads == 1 ? " " : "s", median(cai_mbs), runs, cai_tokens);
      if (!hf_mbs.empty())
        std::printf(" | HF tokenizers %6.2f MB/s (%zu tokens%s) | cai/HF %.1fx\n", median(hf_mbs), hf_tokens,
                    hf_tokens == cai_tokens ? ", equal" : ", DIFFERENT", median(cai_mbs) / median(hf_mbs));
      else
        std::printf(" | HF tokenizers skipped: %s\n", peer_note.c_str());
    }
  }
  std::filesystem::remove(docs_file);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_tokenizer: %s\n", e.what());
  return 1;
}
