// libFuzzer target: the Hugging Face tokenizer.json reader, then encode/decode with what it loaded.
#include "targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  cai_fuzz::tokenizer_json_reader(data, size);
  return 0;
}
