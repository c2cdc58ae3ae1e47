// The backend-generic test cases of transformer<Backend> (tests/model/transformer_cases.hpp: parameter
// tables, gradients against finite differences in double, KV-cached decoding against the full forward,
// learning with AdamW, bit-for-bit determinism), run on cai::cuda: the same test list the CPU runs in
// tests/model/test_transformer.cpp. Without a GPU the program prints why and exits with 77 (skipped).
#include "cai/backend/cuda.cuh"
#include "cai/backend/cuda_train.cuh"


#include "gpu_main.hpp"

#define CAI_MODEL_BACKENDS cai::cuda_t
#include "model/transformer_cases.hpp"

int main(int argc, char** argv) { return cai_test::gpu_main(argc, argv); }
