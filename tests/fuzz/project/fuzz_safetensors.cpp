// libFuzzer target: the safetensors reader.
#include "targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  cai_fuzz::safetensors_reader(data, size);
  return 0;
}
