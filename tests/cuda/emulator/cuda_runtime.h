// cai's CUDA emulator: the part of the CUDA runtime that the CUDA backend (include/cai/backend/*.cuh) uses,
// implemented on the CPU, so that the backend's kernels and its GPU tests run in CI on machines without a
// GPU. It is compiled by the host compiler (g++) with CAI_CUDA_EMULATION defined and this folder ahead of
// the CUDA Toolkit's on the include path; tests/cuda/CMakeLists.txt builds the emulated tests. Not for
// timing: it runs every GPU thread, one after another, on one CPU thread.
//
// The types, enums and prototypes are the toolkit's own (<cuda_runtime_api.h>, which Thrust's host
// backend includes too); this file defines the functions that cai calls, in place of libcudart, and
// stands in for <cuda_runtime.h>, which is nvcc's. No other function of the runtime is defined: a call to
// one fails to link.
//
// What it does:
//  - Device memory is host memory from the emulator's own allocator, which records every allocation.
//    cudaMemcpy and cudaMemset check that each pointer lies where the copy's direction says (a device
//    pointer inside a live allocation, a host pointer outside every one), and a kernel launch checks that
//    every pointer argument is null or a device pointer. A violation is the runtime's error code
//    (cudaErrorInvalidValue), which cai turns into a cai::cuda_error, and a line on stderr that says which
//    argument. So a host pointer handed to a kernel fails here as it would on a GPU.
//  - A launch, `CAI_CUDA_LAUNCH(kernel, grid, block)(args...)` (`kernel<<<grid, block>>>(args...)` under
//    nvcc), runs the blocks one after another. The threads of a block are fibers on the calling thread
//    (a stack switch of a few instructions on x86-64, ucontext elsewhere): each runs until it finishes or
//    reaches `__syncthreads()` (a block barrier) or a warp shuffle
//    (a barrier of the 32 threads of its warp); a barrier opens when every thread of the block (or warp)
//    that has not finished waits at it. Threads that wait at different barriers are reported as a
//    deadlock (an exception from the launch) instead of hanging.
//    Between barriers the threads run in index order, or in reverse order when the environment variable
//    CAI_CUDA_EMULATOR_ORDER is "reverse": a kernel whose result changes with the order has a race (a
//    thread reads what another writes with no barrier between them).
//  - `__shared__` variables are `static thread_local`: one copy, shared by the block that is running. The
//    dynamic shared memory of `CAI_CUDA_LAUNCH_SHARED` (`CAI_CUDA_DYNAMIC_SHARED(name)` in the kernel)
//    starts each block as all-ones bytes, NaN as floats, so that a read before any write shows.
//  - `__syncwarp()` is a barrier of the warp. WMMA (tensor-core tiles, <mma.h>) is emulated in mma.h here.
//  - atomics are plain read-modify-writes (one thread runs at a time).
// Device math functions are the C++ library's (<cmath>): results may differ from CUDA's in the last bits,
// which the tests' tolerances against the CPU backend cover.
#pragma once

#if !defined(CAI_CUDA_EMULATION)
#error "this cuda_runtime.h is cai's CUDA emulator (tests/cuda/emulator): compile with -DCAI_CUDA_EMULATION"
#endif

#include <math.h>
#include <sys/mman.h>
#include <ucontext.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdlib.h>
#include <cstring>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <cuda_runtime_api.h>  // the toolkit's types and prototypes (host_defines.h makes __device__ & co. empty)

// ---------------------------------------------------------------------------------------------------
// Qualifiers and built-in variables

#undef __shared__
#define __shared__ static thread_local  // one copy, for the block that is running
#ifndef __launch_bounds__
#define __launch_bounds__(...)
#endif

inline thread_local uint3 threadIdx, blockIdx;
inline thread_local dim3 blockDim, gridDim;

namespace cai_emu {

// ---------------------------------------------------------------------------------------------------
// Device memory

struct device_state {
  std::map<std::uintptr_t, std::size_t> allocations;  // start -> bytes
  std::size_t in_use = 0;
  std::size_t capacity = std::size_t{16} << 30;  // what cudaMalloc grants in all, as a 16 GiB GPU would
  cudaError_t last_error = cudaSuccess;
};
inline device_state& device() {
  static device_state d;
  return d;
}

/// Whether [p, p + bytes) lies inside one live device allocation (p may be one past its end when bytes is 0).
inline bool is_device(const void* p, std::size_t bytes = 0) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  auto& live = device().allocations;
  auto it = live.upper_bound(a);
  if (it == live.begin()) return false;
  --it;
  return a >= it->first && a + bytes <= it->first + it->second && (bytes != 0 || a <= it->first + it->second);
}

inline cudaError_t fail(cudaError_t e, const std::string& why) {
  std::fprintf(stderr, "cai CUDA emulator: %s\n", why.c_str());
  return e;
}

inline std::string address(const void* p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%p", p);
  return buf;
}

// ---------------------------------------------------------------------------------------------------
// Threads of a block: fibers

namespace detail {

enum class fiber_state : unsigned char { runnable, block_barrier, warp_barrier, done };

#if defined(__x86_64__) && defined(__GNUC__)
#define CAI_EMU_FAST_SWITCH 1
/// Saves the callee-saved registers, MXCSR and the x87 control word on the current stack, stores the stack
/// pointer in *from, and resumes the stack `to` (saved the same way, or prepared by `prepare_stack`).
[[gnu::naked, gnu::noinline]] inline void switch_stack(void** /*from: rdi*/, void* /*to: rsi*/) {
  asm("pushq %rbp\n\t"
      "pushq %rbx\n\t"
      "pushq %r12\n\t"
      "pushq %r13\n\t"
      "pushq %r14\n\t"
      "pushq %r15\n\t"
      "subq $8, %rsp\n\t"
      "stmxcsr (%rsp)\n\t"
      "fnstcw 4(%rsp)\n\t"
      "movq %rsp, (%rdi)\n\t"
      "movq %rsi, %rsp\n\t"
      "ldmxcsr (%rsp)\n\t"
      "fldcw 4(%rsp)\n\t"
      "addq $8, %rsp\n\t"
      "popq %r15\n\t"
      "popq %r14\n\t"
      "popq %r13\n\t"
      "popq %r12\n\t"
      "popq %rbx\n\t"
      "popq %rbp\n\t"
      "ret\n\t");
}
#else
#define CAI_EMU_FAST_SWITCH 0
#endif

struct fiber {
#if CAI_EMU_FAST_SWITCH
  void* sp = nullptr;
#else
  ucontext_t context;
#endif
  uint3 index;
  fiber_state state = fiber_state::runnable;
};

struct engine {
  std::vector<fiber> fibers;
  std::vector<void*> stacks;
  std::vector<std::uint64_t> exchange;  // one word per thread: the values of a warp shuffle
#if CAI_EMU_FAST_SWITCH
  void* scheduler = nullptr;
#else
  ucontext_t scheduler;
#endif
  std::vector<unsigned char> dynamic_shared;  // the block's `extern __shared__` array
  std::size_t current = 0;
  const std::function<void()>* body = nullptr;
  bool in_kernel = false;
  static constexpr std::size_t stack_bytes = std::size_t{256} << 10;
  ~engine() {
    for (void* s : stacks) munmap(s, stack_bytes);
  }
};
inline engine& the_engine() {
  thread_local engine e;
  return e;
}

/// Back to the scheduler from the running GPU thread.
inline void to_scheduler() {
  engine& e = the_engine();
  fiber& f = e.fibers[e.current];
#if CAI_EMU_FAST_SWITCH
  switch_stack(&f.sp, e.scheduler);
#else
  swapcontext(&f.context, &e.scheduler);
#endif
}

/// A GPU thread from start to end; it never returns (its stack is abandoned, and reused by the next block).
inline void fiber_main() {
  engine& e = the_engine();
  try {
    (*e.body)();
  } catch (...) {
    std::fprintf(stderr, "cai CUDA emulator: a kernel thread threw an exception\n");
    device().last_error = cudaErrorLaunchFailure;
  }
  e.fibers[e.current].state = fiber_state::done;
  to_scheduler();
  std::abort();  // a finished thread is never resumed
}

/// Suspends the running GPU thread at a barrier until the scheduler opens it.
inline void wait_at(fiber_state barrier) {
  engine& e = the_engine();
  if (!e.in_kernel) throw std::logic_error("cai CUDA emulator: a barrier or shuffle outside a kernel");
  e.fibers[e.current].state = barrier;
  to_scheduler();
}

/// Makes fiber t start at fiber_main on its own stack.
inline void prepare(engine& e, std::size_t t) {
  fiber& f = e.fibers[t];
#if CAI_EMU_FAST_SWITCH
  // the frame switch_stack pops: [mxcsr | fpu cw] r15 r14 r13 r12 rbx rbp, then fiber_main as the return
  // address, placed so that fiber_main starts with the stack aligned as after a call
  auto top = reinterpret_cast<std::uintptr_t>(e.stacks[t]) + engine::stack_bytes;
  top &= ~std::uintptr_t{15};
  auto* slot = reinterpret_cast<std::uint64_t*>(top - 16);  // the return address, at a 16-byte boundary
  slot[0] = reinterpret_cast<std::uint64_t>(&fiber_main);
  slot[1] = 0;
  std::uint64_t* frame = slot - 7;
  std::uint32_t control[2] = {0x1F80u, 0x037Fu};  // MXCSR and x87 control word: the defaults
  std::memcpy(frame, control, sizeof control);
  for (int i = 1; i < 7; ++i) frame[i] = 0;
  f.sp = frame;
#else
  getcontext(&f.context);
  f.context.uc_stack.ss_sp = e.stacks[t];
  f.context.uc_stack.ss_size = engine::stack_bytes;
  f.context.uc_link = &e.scheduler;
  makecontext(&f.context, fiber_main, 0);
#endif
}

/// Runs the threads of one block (the built-in variables other than threadIdx already set) to completion.
inline void run_block(const dim3& block, const std::function<void()>& body, const char* kernel,
                      std::size_t shared_bytes) {
  engine& e = the_engine();
  // shared memory starts as garbage on a GPU: all-ones bytes (NaN for floats) make a read before a write show
  e.dynamic_shared.assign(shared_bytes + 128, 0xFF);
  const std::size_t n = std::size_t{block.x} * block.y * block.z;
  while (e.stacks.size() < n) {
    void* s = mmap(nullptr, engine::stack_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (s == MAP_FAILED) throw std::runtime_error("cai CUDA emulator: no memory for a thread's stack");
    e.stacks.push_back(s);
  }
  e.fibers.resize(n);
  e.exchange.assign(n, 0);
  for (std::size_t t = 0; t < n; ++t) {
    fiber& f = e.fibers[t];
    f.index = {static_cast<unsigned>(t % block.x), static_cast<unsigned>((t / block.x) % block.y),
               static_cast<unsigned>(t / (std::size_t{block.x} * block.y))};
    f.state = fiber_state::runnable;
    prepare(e, t);
  }
  e.body = &body;
  e.in_kernel = true;
  static const bool reverse = [] {
    const char* order = std::getenv("CAI_CUDA_EMULATOR_ORDER");
    return order != nullptr && std::strcmp(order, "reverse") == 0;
  }();
  for (;;) {
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t t = reverse ? n - 1 - i : i;
      if (e.fibers[t].state != fiber_state::runnable) continue;
      e.current = t;
      threadIdx = e.fibers[t].index;
#if CAI_EMU_FAST_SWITCH
      switch_stack(&e.scheduler, e.fibers[t].sp);
#else
      swapcontext(&e.scheduler, &e.fibers[t].context);
#endif
    }
    // every thread has finished or waits at a barrier: open the barriers that every live thread reached
    std::size_t live = 0, at_block = 0;
    for (const fiber& f : e.fibers) {
      live += f.state != fiber_state::done;
      at_block += f.state == fiber_state::block_barrier;
    }
    if (live == 0) break;
    bool opened = false;
    for (std::size_t w = 0; w < n; w += 32) {
      const std::size_t end = std::min(n, w + 32);
      std::size_t live_w = 0, at_warp = 0;
      for (std::size_t t = w; t < end; ++t) {
        live_w += e.fibers[t].state != fiber_state::done;
        at_warp += e.fibers[t].state == fiber_state::warp_barrier;
      }
      if (at_warp != 0 && at_warp == live_w) {
        for (std::size_t t = w; t < end; ++t)
          if (e.fibers[t].state == fiber_state::warp_barrier) e.fibers[t].state = fiber_state::runnable;
        opened = true;
      }
    }
    if (!opened && at_block == live) {
      for (fiber& f : e.fibers)
        if (f.state == fiber_state::block_barrier) f.state = fiber_state::runnable;
      opened = true;
    }
    if (!opened) {
      e.in_kernel = false;
      throw std::runtime_error(std::string("cai CUDA emulator: deadlock in kernel ") + kernel + ": of " +
                               std::to_string(live) + " live threads of block (" + std::to_string(blockIdx.x) +
                               ", " + std::to_string(blockIdx.y) + ", " + std::to_string(blockIdx.z) + "), " +
                               std::to_string(at_block) +
                               " wait at __syncthreads and the others at a warp shuffle their warp does not "
                               "complete");
    }
  }
  e.in_kernel = false;
}

/// The running block's dynamic shared memory (`CAI_CUDA_DYNAMIC_SHARED`), 128-byte aligned.
inline unsigned char* dynamic_shared() {
  auto& buffer = the_engine().dynamic_shared;
  const auto base = reinterpret_cast<std::uintptr_t>(buffer.data());
  return buffer.data() + ((128 - base % 128) % 128);
}

template <class A>
bool pointer_argument_ok(const A& a) {
  using D = std::decay_t<A>;
  if constexpr (std::is_pointer_v<D> && !std::is_function_v<std::remove_pointer_t<D>>)
    return a == nullptr || is_device(a);
  else
    return true;
}

}  // namespace detail

/// A kernel bound to its launch configuration; calling it with the kernel's arguments runs the grid.
template <class Kernel>
struct launch {
  const char* name;
  dim3 grid, block;
  std::size_t shared_bytes;
  Kernel kernel;

  template <class... Args>
  void operator()(Args&&... args) {
    const std::size_t threads = std::size_t{block.x} * block.y * block.z;
    if (threads == 0 || threads > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
        grid.y > 65535 || grid.z > 65535 || shared_bytes > 232448) {  // 227 KiB: an H100's most per block
      device().last_error =
          fail(cudaErrorInvalidConfiguration, std::string("launch of ") + name + ": invalid grid or block");
      return;
    }
    std::size_t i = 0;
    bool ok = true;
    (
        [&] {
          if (!detail::pointer_argument_ok(args)) {
            ok = false;
            if constexpr (std::is_pointer_v<std::decay_t<Args>>)
              fail(cudaErrorInvalidValue, std::string("launch of ") + name + ": argument " + std::to_string(i) +
                                              " (" + address(args) + ") is not a device pointer");
          }
          ++i;
        }(),
        ...);
    if (!ok) {
      device().last_error = cudaErrorInvalidValue;
      return;
    }
    const std::function<void()> body = [&] { kernel(args...); };
    gridDim = grid;
    blockDim = block;
    for (unsigned z = 0; z < grid.z; ++z)
      for (unsigned y = 0; y < grid.y; ++y)
        for (unsigned x = 0; x < grid.x; ++x) {
          blockIdx = {x, y, z};
          detail::run_block(block, body, name, shared_bytes);
        }
  }
};

template <class Kernel>
launch<Kernel> make_launch(const char* name, dim3 grid, dim3 block, std::size_t shared_bytes, Kernel kernel) {
  return {name, grid, block, shared_bytes, std::move(kernel)};
}

}  // namespace cai_emu

#define CAI_CUDA_LAUNCH(kernel, grid, block) \
  ::cai_emu::make_launch(#kernel, grid, block, 0, [&](auto&&... cai_emu_args) { kernel(cai_emu_args...); })
#define CAI_CUDA_LAUNCH_SHARED(kernel, grid, block, bytes) \
  ::cai_emu::make_launch(#kernel, grid, block, bytes, [&](auto&&... cai_emu_args) { kernel(cai_emu_args...); })
#define CAI_CUDA_DYNAMIC_SHARED(name) unsigned char* name = ::cai_emu::detail::dynamic_shared()

// ---------------------------------------------------------------------------------------------------
// Device functions

inline void __syncthreads() { cai_emu::detail::wait_at(cai_emu::detail::fiber_state::block_barrier); }
inline void __syncwarp(unsigned /*mask*/ = 0xffffffffu) {
  cai_emu::detail::wait_at(cai_emu::detail::fiber_state::warp_barrier);
}

/// The value of `v` held by the lane `lane ^ lane_mask` of the calling thread's warp.
template <class T>
T __shfl_xor_sync(unsigned /*mask*/, T v, int lane_mask, int /*width*/ = 32) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "cai CUDA emulator: shuffles of up to 8 bytes");
  auto& e = cai_emu::detail::the_engine();
  const std::size_t self = e.current;
  std::memcpy(&e.exchange[self], &v, sizeof v);
  cai_emu::detail::wait_at(cai_emu::detail::fiber_state::warp_barrier);  // every lane has written
  const std::size_t source = (self & ~std::size_t{31}) | ((self & 31) ^ static_cast<std::size_t>(lane_mask & 31));
  T out = v;
  if (source < e.exchange.size()) std::memcpy(&out, &e.exchange[source], sizeof out);
  cai_emu::detail::wait_at(cai_emu::detail::fiber_state::warp_barrier);  // every lane has read
  return out;
}

template <class T>
T atomicAdd(T* address, T value) {
  const T old = *address;
  *address = old + value;
  return old;
}
template <class T>
T atomicMin(T* address, T value) {
  const T old = *address;
  if (value < old) *address = value;
  return old;
}
template <class T>
T atomicMax(T* address, T value) {
  const T old = *address;
  if (value > old) *address = value;
  return old;
}

// ---------------------------------------------------------------------------------------------------
// Runtime API

extern "C" {

inline const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    default: return "cudaErrorUnknown";
  }
}
inline const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    default: return "an error of cai's CUDA emulator";
  }
}

inline cudaError_t cudaFuncSetAttribute(const void* /*kernel*/, enum cudaFuncAttribute /*attribute*/, int value) {
  return value < 0 || value > 232448 ? cudaErrorInvalidValue : cudaSuccess;
}

inline cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
inline cudaError_t cudaGetLastError() { return std::exchange(cai_emu::device().last_error, cudaSuccess); }
inline cudaError_t cudaPeekAtLastError() { return cai_emu::device().last_error; }
inline cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }

inline cudaError_t cudaMalloc(void** p, std::size_t bytes) {
  auto& d = cai_emu::device();
  *p = nullptr;
  if (bytes > d.capacity - d.in_use)
    return cai_emu::fail(cudaErrorMemoryAllocation,
                         "cudaMalloc of " + std::to_string(bytes) + " bytes: out of emulated device memory");
  if (bytes == 0) return cudaSuccess;
  // 256-byte alignment, as cudaMalloc gives; the size is kept exact so that AddressSanitizer sees overruns
  void* q = nullptr;
  if (posix_memalign(&q, 256, bytes) != 0) return cudaErrorMemoryAllocation;
  d.allocations.emplace(reinterpret_cast<std::uintptr_t>(q), bytes);
  d.in_use += bytes;
  *p = q;
  return cudaSuccess;
}

inline cudaError_t cudaFree(void* p) {
  if (p == nullptr) return cudaSuccess;
  auto& d = cai_emu::device();
  const auto it = d.allocations.find(reinterpret_cast<std::uintptr_t>(p));
  if (it == d.allocations.end())
    return cai_emu::fail(cudaErrorInvalidValue, "cudaFree(" + cai_emu::address(p) + "): not the start of an allocation");
  d.in_use -= it->second;
  d.allocations.erase(it);
  std::free(p);
  return cudaSuccess;
}

inline cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, enum cudaMemcpyKind kind) {
  if (bytes == 0) return cudaSuccess;
  using cai_emu::is_device;
  const bool dst_device = is_device(dst, bytes), src_device = is_device(src, bytes);
  const bool ok = kind == cudaMemcpyHostToDevice   ? dst_device && !is_device(src)
                  : kind == cudaMemcpyDeviceToHost ? src_device && !is_device(dst)
                  : kind == cudaMemcpyDeviceToDevice ? dst_device && src_device
                  : kind == cudaMemcpyHostToHost     ? !is_device(dst) && !is_device(src)
                                                     : true;
  if (!ok || dst == nullptr || src == nullptr)
    return cai_emu::fail(cudaErrorInvalidValue, "cudaMemcpy of " + std::to_string(bytes) + " bytes from " +
                                                    cai_emu::address(src) + " to " + cai_emu::address(dst) +
                                                    ": a pointer is not where the copy's direction says");
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}

inline cudaError_t cudaMemset(void* p, int value, std::size_t bytes) {
  if (bytes == 0) return cudaSuccess;
  if (!cai_emu::is_device(p, bytes))
    return cai_emu::fail(cudaErrorInvalidValue, "cudaMemset of " + std::to_string(bytes) + " bytes at " +
                                                    cai_emu::address(p) + ": not device memory");
  std::memset(p, value, bytes);
  return cudaSuccess;
}

}  // extern "C"

/// As nvcc's cuda_runtime.h: an attribute of a kernel given as a function.
template <class F>
cudaError_t cudaFuncSetAttribute(F* kernel, enum cudaFuncAttribute attribute, int value) {
  return cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel), attribute, value);
}

/// As nvcc's cuda_runtime.h: cudaMalloc into a typed pointer.
template <class T>
cudaError_t cudaMalloc(T** p, std::size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(p), bytes);
}
