// The model files' loader and writer (model/load.hpp) compile under nvcc and instantiate for cuda_t: they
// stage the weights on the host and copy them to or from the device once (load_parameters /
// host_parameters), never dereferencing a device pointer.
#include <cai/backend/cuda.cuh>
#include <cai/model/load.hpp>

void cai_cuda_header_check_load_and_save(const std::filesystem::path& from, const std::filesystem::path& to) {
  const auto model = cai::load_model<cai::cuda_t>(from);
  cai::save_model(model, to);
}
