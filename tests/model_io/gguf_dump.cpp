// gguf_dump: what cai reads from a GGUF file, for tests/model_io/check_gguf_with_python.py to compare with
// gguf-py. Usage: gguf_dump <file.gguf> <output folder> [tensor name ...]
// Prints JSON to stdout: version, alignment, data offset, the Llama configuration (when the file has
// one), tokenizer metadata summaries and every tensor's info; writes the dequantised values of each named
// tensor to <output folder>/<index>.f32 (little-endian float32, in the order named).
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "cai/model/gguf.hpp"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: gguf_dump <file.gguf> <output folder> [tensor name ...]\n";
    return 2;
  }
  try {
    const cai::gguf_file f(argv[1]);
    nlohmann::json out;
    out["version"] = f.version();
    out["alignment"] = f.alignment();
    out["data_offset"] = f.data_offset();
    out["n_metadata"] = f.metadata().size();
    if (f.contains("general.architecture") && f.get_string("general.architecture") == "llama") {
      const auto c = cai::read_llama_config(f);
      out["config"] = {{"block_count", c.block_count}, {"embedding_length", c.embedding_length},
                       {"head_count", c.head_count}, {"head_count_kv", c.head_count_kv},
                       {"feed_forward_length", c.feed_forward_length}, {"context_length", c.context_length},
                       {"vocab_size", c.vocab_size}, {"rope_freq_base", c.rope_freq_base},
                       {"rms_norm_eps", c.rms_norm_eps}};
    }
    if (f.contains("tokenizer.ggml.model")) {
      const auto t = cai::read_tokenizer_metadata(f);
      out["tokenizer"] = {{"model", t.model}, {"tokens", t.tokens}, {"merges", t.merges},
                          {"token_type", t.token_types}, {"chat_template", t.chat_template}};
      if (t.bos_token_id) out["tokenizer"]["bos_token_id"] = *t.bos_token_id;
      if (t.eos_token_id) out["tokenizer"]["eos_token_id"] = *t.eos_token_id;
    }
    out["tensors"] = nlohmann::json::array();
    for (const auto& t : f.tensors())
      out["tensors"].push_back({{"name", t.name}, {"type", std::string(cai::to_string(t.type))}, {"ne", t.dims},
                                {"offset", t.offset}, {"n_bytes", t.n_bytes}});
    std::filesystem::create_directories(argv[2]);
    for (int i = 3; i < argc; ++i) {
      const auto values = f.dequantize(argv[i]);  // values: (n_elements)
      std::ofstream file(std::filesystem::path(argv[2]) / (std::to_string(i - 3) + ".f32"), std::ios::binary);
      file.write(reinterpret_cast<const char*>(values.data()), static_cast<std::streamsize>(values.size() * sizeof(float)));
      if (!file) throw cai::io_error(argv[2], "cannot write the values of " + std::string(argv[i]));
    }
    std::cout << out.dump() << '\n';
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "gguf_dump: " << e.what() << '\n';
    return 1;
  }
}
