/// @file backend/detail/cuda_support.cuh
/// Private support of the CUDA backend (backend/cuda.cuh): the `cuda_error` exception and the
/// `CAI_CUDA_CHECK` / `CAI_CUBLAS_CHECK` macros, the RAII `device_vector`, the per-thread cuBLAS handle and
/// the math mode of the matrix products, and the block reductions the kernels share. Include
/// `cai/backend/cuda.cuh` rather than this file.
#pragma once

#if !defined(__CUDACC__) && !defined(CAI_CUDA_EMULATION)
#error "cai/backend/detail/cuda_support.cuh is CUDA code: include <cai/backend/cuda.cuh> from a .cu file compiled by nvcc and link cai::cuda"
#endif

#include <cstddef>
#include <cstring>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "cai/error.hpp"

/// Launches a kernel: `CAI_CUDA_LAUNCH(kernel, grid, block)(args...)` is `kernel<<<grid, block>>>(args...)`.
/// The CUDA emulator of tests/cuda/emulator (CAI_CUDA_EMULATION: the same kernels run on the CPU, in CI,
/// without a GPU) defines it in its cuda_runtime.h, before this point.
/// `CAI_CUDA_LAUNCH_SHARED(kernel, grid, block, bytes)` also gives each block `bytes` of dynamic shared
/// memory, which the kernel names with `CAI_CUDA_DYNAMIC_SHARED(name);` (an `unsigned char` array aligned
/// to 128 bytes).
#ifndef CAI_CUDA_LAUNCH
#define CAI_CUDA_LAUNCH(kernel, grid, block) kernel<<<grid, block>>>
#define CAI_CUDA_LAUNCH_SHARED(kernel, grid, block, bytes) kernel<<<grid, block, bytes>>>
#define CAI_CUDA_DYNAMIC_SHARED(name) extern __shared__ __align__(128) unsigned char name[]
#endif

namespace cai {

// ---------------------------------------------------------------------------------------------------
// Errors

/// A CUDA runtime or cuBLAS call failed. The message names the call, where it was made (file and line),
/// the error code's name and number and the library's description of it, and what to try.
class cuda_error : public error {
 public:
  /// @param call     the failing call as written in the source, e.g. `cudaMemcpy(dst, src, n, kind)`.
  /// @param code     the numeric error code (a `cudaError_t` or `cublasStatus_t`).
  /// @param code_name the code's name, e.g. `cudaErrorInvalidValue`.
  /// @param description the library's description of the code.
  /// @param file, line where the call was made.
  cuda_error(std::string call, int code, std::string code_name, const std::string& description, const char* file,
             int line)
      : error(format(call, code, code_name, description, file, line)), call_(std::move(call)), code_(code),
        code_name_(std::move(code_name)) {}
  /// The failing call as written in the source (the expression passed to the checking macro).
  [[nodiscard]] const std::string& call() const noexcept { return call_; }
  /// The numeric error code.
  [[nodiscard]] int code() const noexcept { return code_; }
  /// The error code's name (`cudaErrorNoDevice`, `CUBLAS_STATUS_NOT_INITIALIZED`, ...).
  [[nodiscard]] const std::string& code_name() const noexcept { return code_name_; }

 private:
  static std::string format(const std::string& call, int code, const std::string& code_name,
                            const std::string& description, const char* file, int line) {
    std::string where = file != nullptr ? std::string(file) + ":" + std::to_string(line) + ": " : std::string();
    return where + call + " failed with " + code_name + " (" + std::to_string(code) + "): " + description +
           "; check that a GPU is visible (nvidia-smi), that the driver supports this CUDA version, and that "
           "the buffers passed are device buffers of the stated sizes";
  }
  std::string call_;
  int code_;
  std::string code_name_;
};

namespace detail {

/// The name of a cuBLAS status (cublasGetStatusName exists from CUDA 11.4 on; this keeps the message
/// independent of that).
inline const char* cublas_status_name(cublasStatus_t s) noexcept {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "CUBLAS_STATUS_UNKNOWN";
  }
}

/// Throws the cuda_error of a failed runtime call.
[[noreturn]] inline void throw_cuda_error(cudaError_t e, const char* call, const char* file, int line) {
  (void)cudaGetLastError();  // clear a non-sticky error so that the next call does not report it again
  throw cuda_error(call, static_cast<int>(e), cudaGetErrorName(e), cudaGetErrorString(e), file, line);
}

/// Throws the cuda_error of a failed cuBLAS call.
[[noreturn]] inline void throw_cublas_error(cublasStatus_t s, const char* call, const char* file, int line) {
  throw cuda_error(call, static_cast<int>(s), cublas_status_name(s), cublasGetStatusString(s), file, line);
}

}  // namespace detail
}  // namespace cai

/// Evaluates a CUDA runtime call and throws `cai::cuda_error` naming it when it does not return cudaSuccess.
#define CAI_CUDA_CHECK(...)                                                              \
  do {                                                                                   \
    const cudaError_t cai_cuda_status_ = (__VA_ARGS__);                                  \
    if (cai_cuda_status_ != cudaSuccess)                                                 \
      ::cai::detail::throw_cuda_error(cai_cuda_status_, #__VA_ARGS__, __FILE__, __LINE__); \
  } while (false)

/// Evaluates a cuBLAS call and throws `cai::cuda_error` naming it when it does not return
/// CUBLAS_STATUS_SUCCESS.
#define CAI_CUBLAS_CHECK(...)                                                              \
  do {                                                                                     \
    const cublasStatus_t cai_cublas_status_ = (__VA_ARGS__);                               \
    if (cai_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                       \
      ::cai::detail::throw_cublas_error(cai_cublas_status_, #__VA_ARGS__, __FILE__, __LINE__); \
  } while (false)

/// Checks the launch of the kernel named `kernel` (a string): a bad configuration becomes a cuda_error
/// naming the kernel. Errors during execution surface at the next synchronising call.
#define CAI_CUDA_CHECK_LAUNCH(kernel)                                                                   \
  do {                                                                                                 \
    const cudaError_t cai_cuda_status_ = cudaGetLastError();                                           \
    if (cai_cuda_status_ != cudaSuccess)                                                               \
      ::cai::detail::throw_cuda_error(cai_cuda_status_, "launch of kernel " kernel, __FILE__, __LINE__); \
  } while (false)

namespace cai {

// ---------------------------------------------------------------------------------------------------
// Device storage

/// An owning, contiguous buffer of `T` in GPU memory (cudaMalloc / cudaFree): the storage of `cuda_t`.
/// Like `std::vector` it value-initialises (zeroes) new elements, copies deeply and moves cheaply; unlike
/// it, it has no host iterators: `data()` is a device pointer, and the contents cross to and from the host
/// with `to_host()`, `copy_to_host()` and `from_host()`.
/// @tparam T a trivially copyable element type (`float`, `double`, `std::int32_t`).
template <class T>
class device_vector {
  static_assert(std::is_trivially_copyable_v<T>, "cai::device_vector<T> needs a trivially copyable T");

 public:
  using value_type = T;
  using size_type = std::size_t;

  device_vector() noexcept = default;
  /// n zeroed elements. @throws cuda_error when the allocation fails (no GPU, out of memory).
  explicit device_vector(std::size_t n) { resize(n); }
  /// A copy of host data.
  explicit device_vector(std::span<const T> host) { from_host(host); }
  device_vector(const device_vector& other) : device_vector() {
    reserve_exact(other.size_);
    if (other.size_ != 0)
      CAI_CUDA_CHECK(cudaMemcpy(data_, other.data_, other.size_ * sizeof(T), cudaMemcpyDeviceToDevice));
    size_ = other.size_;
  }
  device_vector(device_vector&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)),
        capacity_(std::exchange(other.capacity_, 0)) {}
  device_vector& operator=(const device_vector& other) {
    if (this != &other) {
      device_vector copy(other);
      swap(copy);
    }
    return *this;
  }
  device_vector& operator=(device_vector&& other) noexcept {
    device_vector moved(std::move(other));
    swap(moved);
    return *this;
  }
  ~device_vector() {
    if (data_ != nullptr) (void)cudaFree(data_);  // a destructor must not throw
  }

  void swap(device_vector& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    std::swap(capacity_, other.capacity_);
  }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  /// Device pointer to the first element (null when nothing was ever allocated).
  [[nodiscard]] T* data() noexcept { return data_; }
  [[nodiscard]] const T* data() const noexcept { return data_; }

  /// Changes the size to n, keeping the first min(n, size()) elements and zeroing the new ones.
  void resize(std::size_t n) {
    if (n > capacity_) {
      T* fresh = allocate(n);
      if (size_ != 0) {
        const cudaError_t e = cudaMemcpy(fresh, data_, size_ * sizeof(T), cudaMemcpyDeviceToDevice);
        if (e != cudaSuccess) {
          (void)cudaFree(fresh);
          detail::throw_cuda_error(e, "cudaMemcpy(fresh, data_, size_ * sizeof(T), cudaMemcpyDeviceToDevice)",
                                   __FILE__, __LINE__);
        }
      }
      if (data_ != nullptr) (void)cudaFree(data_);
      data_ = fresh;
      capacity_ = n;
    }
    if (n > size_) CAI_CUDA_CHECK(cudaMemset(data_ + size_, 0, (n - size_) * sizeof(T)));
    size_ = n;
  }
  /// Sets every element to zero (all bits zero: 0 for the arithmetic types).
  void zero() {
    if (size_ != 0) CAI_CUDA_CHECK(cudaMemset(data_, 0, size_ * sizeof(T)));
  }
  /// Replaces the contents with a copy of host data (the size becomes host.size()).
  void from_host(std::span<const T> host) {
    if (host.size() > capacity_) {
      device_vector fresh;
      fresh.reserve_exact(host.size());
      swap(fresh);
    }
    size_ = host.size();
    if (size_ != 0) CAI_CUDA_CHECK(cudaMemcpy(data_, host.data(), size_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  /// Copies the contents into host memory. @pre host.size() == size().
  void copy_to_host(std::span<T> host) const {
    if (host.size() != size_)
      throw validation_error("cai::device_vector::copy_to_host: the host buffer has " + std::to_string(host.size()) +
                             " elements but the device buffer has " + std::to_string(size_));
    if (size_ != 0) CAI_CUDA_CHECK(cudaMemcpy(host.data(), data_, size_ * sizeof(T), cudaMemcpyDeviceToHost));
  }
  /// A host copy of the contents.
  [[nodiscard]] std::vector<T> to_host() const {
    std::vector<T> host(size_);
    copy_to_host(host);
    return host;
  }

 private:
  static T* allocate(std::size_t n) {
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, n * sizeof(T));
    if (e != cudaSuccess)
      detail::throw_cuda_error(e,
                               ("cudaMalloc of " + std::to_string(n * sizeof(T)) + " bytes (a device_vector of " +
                                std::to_string(n) + " elements)")
                                   .c_str(),
                               __FILE__, __LINE__);
    return static_cast<T*>(p);
  }
  void reserve_exact(std::size_t n) {
    if (n == 0) return;
    data_ = allocate(n);
    capacity_ = n;
  }

  T* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

// ---------------------------------------------------------------------------------------------------
// Math mode of the matrix products

/// How cuBLAS computes the `float` matrix products (`double` products are always fp64).
enum class cuda_math : unsigned char {
  fp32,  ///< full fp32 arithmetic (CUBLAS_COMPUTE_32F): agrees with the CPU to fp32 rounding.
  tf32,  ///< TF32 tensor cores (CUBLAS_COMPUTE_32F_FAST_TF32): 10-bit mantissa products, fp32 sums.
  bf16,  ///< BF16 tensor cores (CUBLAS_COMPUTE_32F_FAST_16BF): 7-bit mantissa products, fp32 sums.
};

namespace detail {
inline cuda_math& cuda_math_setting() noexcept {
  thread_local cuda_math mode = cuda_math::fp32;
  return mode;
}

/// The calling thread's cuBLAS handle, created at first use and destroyed when the thread ends.
class cublas_handle_holder {
 public:
  cublas_handle_holder() = default;
  cublas_handle_holder(const cublas_handle_holder&) = delete;
  cublas_handle_holder& operator=(const cublas_handle_holder&) = delete;
  ~cublas_handle_holder() {
    if (handle_ != nullptr) (void)cublasDestroy(handle_);
  }
  cublasHandle_t get() {
    if (handle_ == nullptr) CAI_CUBLAS_CHECK(cublasCreate(&handle_));
    return handle_;
  }

 private:
  cublasHandle_t handle_ = nullptr;
};
}  // namespace detail

/// The math mode of this thread's `float` matrix products (fp32 unless changed).
[[nodiscard]] inline cuda_math cuda_math_mode() noexcept { return detail::cuda_math_setting(); }
/// Sets the math mode of this thread's `float` matrix products.
inline void set_cuda_math_mode(cuda_math mode) noexcept { detail::cuda_math_setting() = mode; }

/// Sets the math mode for a scope and restores the previous one on exit.
class scoped_cuda_math {
 public:
  explicit scoped_cuda_math(cuda_math mode) noexcept : previous_(cuda_math_mode()) { set_cuda_math_mode(mode); }
  scoped_cuda_math(const scoped_cuda_math&) = delete;
  scoped_cuda_math& operator=(const scoped_cuda_math&) = delete;
  ~scoped_cuda_math() { set_cuda_math_mode(previous_); }

 private:
  cuda_math previous_;
};

/// The calling thread's cuBLAS handle (created at first use, on the default stream).
/// @throws cuda_error when cublasCreate fails (no GPU, no driver).
inline cublasHandle_t cublas_handle() {
  thread_local detail::cublas_handle_holder holder;
  return holder.get();
}

/// The number of visible GPUs, 0 when the runtime reports an error (no driver, no device) instead of
/// throwing: for tests and tools that decide whether to run.
[[nodiscard]] inline int cuda_device_count() noexcept {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

/// Waits for the GPU's queued work and reports an execution error as a cuda_error.
inline void cuda_synchronize() { CAI_CUDA_CHECK(cudaDeviceSynchronize()); }

namespace detail {

/// Threads per block of the row-wise kernels (a multiple of 32, at most 1024).
inline constexpr unsigned cuda_block = 256;

/// Blocks for a grid-stride loop over n elements with `threads` per block.
inline unsigned cuda_grid(std::size_t n, unsigned threads = cuda_block) {
  const std::size_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(blocks < 65535 * 16 ? (blocks == 0 ? 1 : blocks) : 65535 * 16);
}

/// Sum of v over the warp, in every lane.
template <class T>
__device__ inline T warp_sum(T v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}
/// Maximum of v over the warp, in every lane.
template <class T>
__device__ inline T warp_max(T v) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    const T o = __shfl_xor_sync(0xffffffffu, v, offset);
    v = o > v ? o : v;
  }
  return v;
}

/// Sum of v over the block (blockDim.x a multiple of 32), returned to every thread. `shared` holds 32
/// values; the call synchronises the block and may be called again with the same `shared`.
template <class T>
__device__ inline T block_sum(T v, T* shared) {
  const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  v = warp_sum(v);
  __syncthreads();  // `shared` may still be read by a previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  T total = lane < warps ? shared[lane] : T(0);
  return warp_sum(total);
}
/// Maximum of v over the block, returned to every thread (see block_sum).
template <class T>
__device__ inline T block_max(T v, T* shared, T lowest) {
  const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  T m = lane < warps ? shared[lane] : lowest;
  return warp_max(m);
}

/// A device buffer's contents copied to the host (for argument checks that must throw before a kernel
/// runs: token ids, targets, positions).
template <class T>
[[nodiscard]] std::vector<T> cuda_copy_to_host(const T* device, std::size_t n) {
  std::vector<T> host(n);
  if (n != 0) CAI_CUDA_CHECK(cudaMemcpy(host.data(), device, n * sizeof(T), cudaMemcpyDeviceToHost));
  return host;
}

}  // namespace detail
}  // namespace cai
