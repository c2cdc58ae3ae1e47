// libFuzzer target: GPT-2's tokenizer files (encoder.json, NUL, vocab.bpe), then encode/decode.
#include "targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  cai_fuzz::gpt2_files_reader(data, size);
  return 0;
}
