# cai::cuda: the GPU backend's target, created only when nvcc is found (CAI_ENABLE_CUDA=AUTO) or
# demanded (ON). It links cai::cai, cuBLAS and the CUDA runtime; Thrust comes with the toolkit.
set(CAI_HAS_CUDA OFF)
if(NOT CAI_ENABLE_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    # Default to sm_90 (H100/H200) unless the user chose (CMAKE_CUDA_ARCHITECTURES or the CUDAARCHS
    # environment variable): enable_language() would otherwise pick the compiler's oldest default (sm_75
    # for CUDA 13), so this must be set before it runs.
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES AND NOT DEFINED ENV{CUDAARCHS})
      set(CMAKE_CUDA_ARCHITECTURES 90 CACHE STRING "CUDA architectures to build for (cai's default: 90)")
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(CAI_HAS_CUDA ON)
  elseif(CAI_ENABLE_CUDA STREQUAL "ON")
    message(FATAL_ERROR "CAI_ENABLE_CUDA=ON but no CUDA compiler (nvcc) was found; install the CUDA "
                        "Toolkit or configure with -DCAI_ENABLE_CUDA=OFF")
  endif()
endif()

if(CAI_HAS_CUDA)
  add_library(cai_cuda INTERFACE)
  add_library(cai::cuda ALIAS cai_cuda)
  set_target_properties(cai_cuda PROPERTIES EXPORT_NAME cuda)
  target_link_libraries(cai_cuda INTERFACE cai::cai CUDA::cudart CUDA::cublas)
  # CMake 3.25 does not know C++20 for CUDA: pass the flag ourselves.
  target_compile_options(cai_cuda INTERFACE $<$<COMPILE_LANGUAGE:CUDA>:-std=c++20 --expt-relaxed-constexpr>)
  target_compile_definitions(cai_cuda INTERFACE CAI_HAS_CUDA=1)
  message(STATUS "cai: CUDA found (${CMAKE_CUDA_COMPILER_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES}); "
                 "cai::cuda is available")
else()
  message(STATUS "cai: CUDA not enabled; cai::cuda is not built")
endif()
