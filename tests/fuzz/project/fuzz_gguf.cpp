// libFuzzer target: the gguf reader.
#include "targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  cai_fuzz::gguf_reader(data, size);
  return 0;
}
