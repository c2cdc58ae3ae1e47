// libFuzzer target: the constitution reader (own schema, llm-swarm, the paper's formats).
#include "targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  cai_fuzz::constitution_reader(data, size);
  return 0;
}
