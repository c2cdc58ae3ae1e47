/// @file backend/detail/cuda_flash_attention.cuh
/// Private part of the CUDA backend (included by backend/cuda.cuh): causal, grouped-query attention in
/// tiles on the tensor cores, in the manner of FlashAttention-2 (Dao 2023, arXiv:2307.08691), for `float`
/// models in `cuda_math::bf16` mode. The (T, T) probabilities are never stored: the forward keeps, per
/// (sequence, head, row), the log-sum-exp of the scaled scores and a copy of the output row, and the
/// backward recomputes the probabilities tile by tile from them.
///
/// - Tiles: a block of 4 warps (128 threads) takes 64 query rows (16 per warp) and walks the key tiles of
///   64 keys that the causal mask lets it see. Products are WMMA m16n16k16 with bf16 inputs and fp32
///   accumulators (<mma.h>); the online softmax, the masks and the rescaling are fp32 on the warp's tiles
///   in shared memory, two lanes per row.
/// - Backward, with no atomics (so deterministic): one kernel per (sequence, key/value head, key tile)
///   accumulates dK and dV over the query tiles at or after it and over the query heads of the group; a
///   second, per (sequence, head, query tile), accumulates dQ over the key tiles up to it. Each recomputes
///   the scores and dP = dO V^T; D_i = rowsum(dO ∘ O) comes from a third, small kernel first.
/// - Shared memory is dynamic: about 70 KB per block forward and 125 KB backward at head size 64, 190 KB at
///   128, the largest supported.
#pragma once

#include <cuda_bf16.h>
#include <mma.h>

#include <cmath>
#include <cstddef>
#include <type_traits>

namespace cai::detail {

namespace flash {
inline constexpr int tile = 64;      // query rows of a block, keys of a key tile
inline constexpr int warps = 4;      // 16 rows each
inline constexpr unsigned threads = 128;
inline constexpr int ld_score = 68;  // row stride of a warp's 16 x 64 float tiles (a multiple of 4)
inline constexpr int ld_prob = 72;   // row stride of a warp's 16 x 64 bf16 tiles (a multiple of 8)

/// Row stride of a 64 x D bf16 tile (a multiple of 8, and 32-byte rows at multiples of 16).
__host__ __device__ constexpr int ld_head(int D) { return D + 8; }
/// Row stride of a warp's 16 x D float accumulator tile.
__host__ __device__ constexpr int ld_acc(int D) { return D + 4; }

/// Bytes of shared memory of each kernel for head size D.
constexpr std::size_t forward_bytes(int D) {
  return 3 * tile * ld_head(D) * 2 + warps * 16 * ld_score * 4 + warps * 16 * ld_prob * 2 +
         warps * 16 * ld_acc(D) * 4;
}
constexpr std::size_t backward_kv_bytes(int D) {
  return 4 * tile * ld_head(D) * 2 + 2 * warps * 16 * ld_score * 4 + 2 * warps * 16 * ld_prob * 2 +
         2 * warps * 16 * ld_acc(D) * 4 + 2 * tile * 4;
}
constexpr std::size_t backward_q_bytes(int D) {
  return 4 * tile * ld_head(D) * 2 + 2 * warps * 16 * ld_score * 4 + warps * 16 * ld_prob * 2 +
         warps * 16 * ld_acc(D) * 4 + 2 * tile * 4;
}
}  // namespace flash

using flash_bf16 = __nv_bfloat16;

/// Rows [row0, row0 + 64) of a (T, ld) matrix, columns [0, D) from `src`, into a bf16 tile with row
/// stride ld_head(D); rows at or beyond T are zero. Every thread of the block takes part.
__device__ inline void flash_load_tile(flash_bf16* tile, const float* src, std::size_t ld, std::size_t row0,
                                       std::size_t Tn, int D) {
  const int ldh = flash::ld_head(D);
  for (int i = static_cast<int>(threadIdx.x); i < flash::tile * D; i += static_cast<int>(blockDim.x)) {
    const int r = i / D, d = i % D;
    const std::size_t t = row0 + static_cast<std::size_t>(r);
    tile[r * ldh + d] = __float2bfloat16(t < Tn ? src[t * ld + static_cast<std::size_t>(d)] : 0.0f);
  }
}

/// C (16 x 64 float, row stride flash::ld_score) = A (16 x D rows of a bf16 tile) B^T, where B is 64 rows
/// of a bf16 tile: the scores of 16 rows against 64 rows. Called by a whole warp.
__device__ inline void flash_rows_by_rows(float* c, const flash_bf16* a, const flash_bf16* b, int D) {
  using namespace nvcuda;
  const int ldh = flash::ld_head(D);
  for (int n0 = 0; n0 < flash::tile; n0 += 16) {
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    wmma::fill_fragment(acc, 0.0f);
    for (int k0 = 0; k0 < D; k0 += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, flash_bf16, wmma::row_major> fa;
      wmma::fragment<wmma::matrix_b, 16, 16, 16, flash_bf16, wmma::col_major> fb;  // B^T: b's rows as columns
      wmma::load_matrix_sync(fa, a + k0, ldh);
      wmma::load_matrix_sync(fb, b + n0 * ldh + k0, ldh);
      wmma::mma_sync(acc, fa, fb, acc);
    }
    wmma::store_matrix_sync(c + n0, acc, flash::ld_score, wmma::mem_row_major);
  }
}

/// acc (16 x D float, row stride ld_acc(D)) += P (16 x 64 bf16, row stride flash::ld_prob) M, where M is a
/// 64 x D bf16 tile. Called by a whole warp.
__device__ inline void flash_accumulate(float* acc, const flash_bf16* p, const flash_bf16* m, int D) {
  using namespace nvcuda;
  const int ldh = flash::ld_head(D), lda = flash::ld_acc(D);
  for (int d0 = 0; d0 < D; d0 += 16) {
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> c;
    wmma::load_matrix_sync(c, acc + d0, lda, wmma::mem_row_major);
    for (int k0 = 0; k0 < flash::tile; k0 += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, flash_bf16, wmma::row_major> fa;
      wmma::fragment<wmma::matrix_b, 16, 16, 16, flash_bf16, wmma::row_major> fb;
      wmma::load_matrix_sync(fa, p + k0, flash::ld_prob);
      wmma::load_matrix_sync(fb, m + k0 * ldh + d0, ldh);
      wmma::mma_sync(c, fa, fb, c);
    }
    wmma::store_matrix_sync(acc + d0, c, lda, wmma::mem_row_major);
  }
}

/// Forward: grid (query tiles, B * H). out (B, T, ld.out) gets softmax(q k^T scale + mask) v; saved gets
/// the log-sum-exp of each row, (B, H, T), then a copy of the output, (B, H, T, D).
template <class T>
__global__ void __launch_bounds__(flash::threads)
    flash_forward_kernel(float* out, float* saved, const float* q, const float* k, const float* v, std::size_t B,
                         std::size_t Tn, std::size_t H, std::size_t KVH, int D, float scale, attention_ld ld) {
  CAI_CUDA_DYNAMIC_SHARED(smem);
  const int ldh = flash::ld_head(D), lda = flash::ld_acc(D);
  auto* Qs = reinterpret_cast<flash_bf16*>(smem);
  flash_bf16* Ks = Qs + flash::tile * ldh;
  flash_bf16* Vs = Ks + flash::tile * ldh;
  auto* Ss = reinterpret_cast<float*>(Vs + flash::tile * ldh);
  auto* Ps = reinterpret_cast<flash_bf16*>(Ss + flash::warps * 16 * flash::ld_score);
  auto* Os = reinterpret_cast<float*>(Ps + flash::warps * 16 * flash::ld_prob);

  const std::size_t qtile = blockIdx.x, bh = blockIdx.y, h = bh % H, b = bh / H, kh = h / (H / KVH);
  const std::size_t row0 = qtile * flash::tile;
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int r = lane / 2, half = lane % 2;  // two lanes per row: this lane's row of the warp's 16, its half
  const std::size_t t = row0 + static_cast<std::size_t>(warp * 16 + r);
  float* Sw = Ss + warp * 16 * flash::ld_score;
  flash_bf16* Pw = Ps + warp * 16 * flash::ld_prob;
  float* Ow = Os + warp * 16 * lda;

  flash_load_tile(Qs, q + b * Tn * ld.q + h * static_cast<std::size_t>(D), ld.q, row0, Tn, D);
  for (int i = lane; i < 16 * D; i += 32) Ow[(i / D) * lda + i % D] = 0.0f;
  float m = -INFINITY, l = 0.0f;  // running maximum and sum of exp of this lane's row
  for (std::size_t j = 0; j <= qtile; ++j) {
    __syncthreads();  // the previous key tile is no longer read
    flash_load_tile(Ks, k + b * Tn * ld.k + kh * static_cast<std::size_t>(D), ld.k, j * flash::tile, Tn, D);
    flash_load_tile(Vs, v + b * Tn * ld.v + kh * static_cast<std::size_t>(D), ld.v, j * flash::tile, Tn, D);
    __syncthreads();
    flash_rows_by_rows(Sw, Qs + warp * 16 * ldh, Ks, D);
    __syncwarp();
    float* srow = Sw + r * flash::ld_score + half * 32;
    const std::size_t key0 = j * flash::tile + static_cast<std::size_t>(half * 32);
    float tile_max = -INFINITY;
    for (int c = 0; c < 32; ++c) {
      const std::size_t s = key0 + static_cast<std::size_t>(c);
      const float x = s <= t && s < Tn ? srow[c] * scale : -INFINITY;
      srow[c] = x;
      tile_max = fmaxf(tile_max, x);
    }
    tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
    const float m_new = fmaxf(m, tile_max);  // finite: key 0 is in tile 0 and every row sees it
    float sum = 0.0f;
    flash_bf16* prow = Pw + r * flash::ld_prob + half * 32;
    for (int c = 0; c < 32; ++c) {
      const float p = expf(srow[c] - m_new);  // 0 where masked
      prow[c] = __float2bfloat16(p);
      sum += p;
    }
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    const float alpha = expf(m - m_new);
    l = l * alpha + sum;
    m = m_new;
    for (int d = half; d < D; d += 2) Ow[r * lda + d] *= alpha;
    __syncwarp();
    flash_accumulate(Ow, Pw, Vs, D);
    __syncwarp();
  }
  if (t < Tn) {
    const float inv = 1.0f / l;
    float* o = out + (b * Tn + t) * ld.out + h * static_cast<std::size_t>(D);
    float* copy = saved + B * H * Tn + ((b * H + h) * Tn + t) * static_cast<std::size_t>(D);
    for (int d = half; d < D; d += 2) {
      const float x = Ow[r * lda + d] * inv;
      o[d] = x;
      copy[d] = x;
    }
    if (half == 0) saved[(b * H + h) * Tn + t] = m + logf(l);
  }
}

/// delta[(b, h, t)] = Σ_d dout[b, t, h, d] o[(b, h, t), d], one warp per row.
template <class T>
__global__ void flash_delta_kernel(float* delta, const float* dout, const float* o, std::size_t rows, std::size_t Tn,
                                   std::size_t H, int D, std::size_t ld_out) {
  const std::size_t warps = gridDim.x * std::size_t(blockDim.x / 32);
  const int lane = static_cast<int>(threadIdx.x) % 32;
  // rows handed out per warp, so that a warp's lanes stay together for warp_sum
  for (std::size_t row = blockIdx.x * std::size_t(blockDim.x / 32) + threadIdx.x / 32; row < rows; row += warps) {
    const std::size_t t = row % Tn, bh = row / Tn, h = bh % H, b = bh / H;
    const float* g = dout + (b * Tn + t) * ld_out + h * static_cast<std::size_t>(D);
    const float* orow = o + row * static_cast<std::size_t>(D);
    float acc = 0.0f;
    for (int d = lane; d < D; d += 32) acc += g[d] * orow[d];
    acc = warp_sum(acc);
    if (lane == 0) delta[row] = acc;
  }
}

/// The log-sum-exp and delta of the 64 query rows from row0 of (b, h), into shared memory; 0 beyond T.
__device__ inline void flash_load_row_stats(float* lse_s, float* delta_s, const float* lse, const float* delta,
                                            std::size_t row_base, std::size_t row0, std::size_t Tn) {
  for (int i = static_cast<int>(threadIdx.x); i < flash::tile; i += static_cast<int>(blockDim.x)) {
    const std::size_t t = row0 + static_cast<std::size_t>(i);
    lse_s[i] = t < Tn ? lse[row_base + t] : 0.0f;
    delta_s[i] = t < Tn ? delta[row_base + t] : 0.0f;
  }
}

/// Backward, keys and values: grid (key tiles, B * KVH). dk += scale Σ dS^T q and dv += Σ P^T dout over the
/// query rows at or after each key and the query heads of its group.
template <class T>
__global__ void __launch_bounds__(flash::threads)
    flash_backward_kv_kernel(float* dk, float* dv, const float* dout, const float* q, const float* k, const float* v,
                             const float* lse, const float* delta, std::size_t Tn, std::size_t H, std::size_t KVH,
                             int D, float scale, attention_ld ld) {
  CAI_CUDA_DYNAMIC_SHARED(smem);
  const int ldh = flash::ld_head(D), lda = flash::ld_acc(D);
  auto* Ks = reinterpret_cast<flash_bf16*>(smem);
  flash_bf16* Vs = Ks + flash::tile * ldh;
  flash_bf16* Qs = Vs + flash::tile * ldh;
  flash_bf16* dOs = Qs + flash::tile * ldh;
  auto* Ss = reinterpret_cast<float*>(dOs + flash::tile * ldh);
  float* DPs = Ss + flash::warps * 16 * flash::ld_score;
  auto* PTs = reinterpret_cast<flash_bf16*>(DPs + flash::warps * 16 * flash::ld_score);
  flash_bf16* dSTs = PTs + flash::warps * 16 * flash::ld_prob;
  auto* dKs = reinterpret_cast<float*>(dSTs + flash::warps * 16 * flash::ld_prob);
  float* dVs = dKs + flash::warps * 16 * lda;
  float* lse_s = dVs + flash::warps * 16 * lda;
  float* delta_s = lse_s + flash::tile;

  const std::size_t ktile = blockIdx.x, bk = blockIdx.y, kh = bk % KVH, b = bk / KVH, group = H / KVH;
  const std::size_t key0 = ktile * flash::tile, tiles = (Tn + flash::tile - 1) / flash::tile;
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int r = lane / 2, half = lane % 2;
  const std::size_t s = key0 + static_cast<std::size_t>(warp * 16 + r);  // this lane's key
  float* STw = Ss + warp * 16 * flash::ld_score;
  float* DPTw = DPs + warp * 16 * flash::ld_score;
  flash_bf16* PTw = PTs + warp * 16 * flash::ld_prob;
  flash_bf16* dSTw = dSTs + warp * 16 * flash::ld_prob;
  float* dKw = dKs + warp * 16 * lda;
  float* dVw = dVs + warp * 16 * lda;

  flash_load_tile(Ks, k + b * Tn * ld.k + kh * static_cast<std::size_t>(D), ld.k, key0, Tn, D);
  flash_load_tile(Vs, v + b * Tn * ld.v + kh * static_cast<std::size_t>(D), ld.v, key0, Tn, D);
  for (int i = lane; i < 16 * D; i += 32) dKw[(i / D) * lda + i % D] = dVw[(i / D) * lda + i % D] = 0.0f;
  for (std::size_t h = kh * group; h < (kh + 1) * group; ++h) {
    for (std::size_t it = ktile; it < tiles; ++it) {
      const std::size_t qrow0 = it * flash::tile;
      __syncthreads();  // the previous query tile is no longer read
      flash_load_tile(Qs, q + b * Tn * ld.q + h * static_cast<std::size_t>(D), ld.q, qrow0, Tn, D);
      flash_load_tile(dOs, dout + b * Tn * ld.out + h * static_cast<std::size_t>(D), ld.out, qrow0, Tn, D);
      flash_load_row_stats(lse_s, delta_s, lse, delta, (b * H + h) * Tn, qrow0, Tn);
      __syncthreads();
      flash_rows_by_rows(STw, Ks + warp * 16 * ldh, Qs, D);    // S^T: 16 keys x 64 queries
      flash_rows_by_rows(DPTw, Vs + warp * 16 * ldh, dOs, D);  // dP^T = V dO^T
      __syncwarp();
      for (int c = half * 32; c < half * 32 + 32; ++c) {
        const std::size_t tq = qrow0 + static_cast<std::size_t>(c);
        const bool seen = tq >= s && tq < Tn && s < Tn;
        const float p = seen ? expf(STw[r * flash::ld_score + c] * scale - lse_s[c]) : 0.0f;
        PTw[r * flash::ld_prob + c] = __float2bfloat16(p);
        dSTw[r * flash::ld_prob + c] = __float2bfloat16(p * (DPTw[r * flash::ld_score + c] - delta_s[c]));
      }
      __syncwarp();
      flash_accumulate(dVw, PTw, dOs, D);
      flash_accumulate(dKw, dSTw, Qs, D);
      __syncwarp();
    }
  }
  for (int i = lane; i < 16 * D; i += 32) {
    const int row = i / D, d = i % D;
    const std::size_t key = key0 + static_cast<std::size_t>(warp * 16 + row);
    if (key >= Tn) continue;
    const std::size_t at = b * Tn + key;
    if (dk != nullptr) dk[at * ld.k + kh * static_cast<std::size_t>(D) + d] += dKw[row * lda + d] * scale;
    if (dv != nullptr) dv[at * ld.v + kh * static_cast<std::size_t>(D) + d] += dVw[row * lda + d];
  }
}

/// Backward, queries: grid (query tiles, B * H). dq += scale Σ dS k over the keys up to each row.
template <class T>
__global__ void __launch_bounds__(flash::threads)
    flash_backward_q_kernel(float* dq, const float* dout, const float* q, const float* k, const float* v,
                            const float* lse, const float* delta, std::size_t Tn, std::size_t H, std::size_t KVH,
                            int D, float scale, attention_ld ld) {
  CAI_CUDA_DYNAMIC_SHARED(smem);
  const int ldh = flash::ld_head(D), lda = flash::ld_acc(D);
  auto* Qs = reinterpret_cast<flash_bf16*>(smem);
  flash_bf16* dOs = Qs + flash::tile * ldh;
  flash_bf16* Ks = dOs + flash::tile * ldh;
  flash_bf16* Vs = Ks + flash::tile * ldh;
  auto* Ss = reinterpret_cast<float*>(Vs + flash::tile * ldh);
  float* DPs = Ss + flash::warps * 16 * flash::ld_score;
  auto* dSs = reinterpret_cast<flash_bf16*>(DPs + flash::warps * 16 * flash::ld_score);
  auto* dQs = reinterpret_cast<float*>(dSs + flash::warps * 16 * flash::ld_prob);
  float* lse_s = dQs + flash::warps * 16 * lda;
  float* delta_s = lse_s + flash::tile;

  const std::size_t qtile = blockIdx.x, bh = blockIdx.y, h = bh % H, b = bh / H, kh = h / (H / KVH);
  const std::size_t row0 = qtile * flash::tile;
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int r = lane / 2, half = lane % 2;
  const int wr = warp * 16 + r;  // this lane's row within the tile
  const std::size_t t = row0 + static_cast<std::size_t>(wr);
  float* Sw = Ss + warp * 16 * flash::ld_score;
  float* DPw = DPs + warp * 16 * flash::ld_score;
  flash_bf16* dSw = dSs + warp * 16 * flash::ld_prob;
  float* dQw = dQs + warp * 16 * lda;

  flash_load_tile(Qs, q + b * Tn * ld.q + h * static_cast<std::size_t>(D), ld.q, row0, Tn, D);
  flash_load_tile(dOs, dout + b * Tn * ld.out + h * static_cast<std::size_t>(D), ld.out, row0, Tn, D);
  flash_load_row_stats(lse_s, delta_s, lse, delta, (b * H + h) * Tn, row0, Tn);
  for (int i = lane; i < 16 * D; i += 32) dQw[(i / D) * lda + i % D] = 0.0f;
  for (std::size_t j = 0; j <= qtile; ++j) {
    __syncthreads();  // the previous key tile is no longer read (and, first, the loads above are done)
    flash_load_tile(Ks, k + b * Tn * ld.k + kh * static_cast<std::size_t>(D), ld.k, j * flash::tile, Tn, D);
    flash_load_tile(Vs, v + b * Tn * ld.v + kh * static_cast<std::size_t>(D), ld.v, j * flash::tile, Tn, D);
    __syncthreads();
    flash_rows_by_rows(Sw, Qs + warp * 16 * ldh, Ks, D);    // S: 16 queries x 64 keys
    flash_rows_by_rows(DPw, dOs + warp * 16 * ldh, Vs, D);  // dP = dO V^T
    __syncwarp();
    for (int c = half * 32; c < half * 32 + 32; ++c) {
      const std::size_t s = j * flash::tile + static_cast<std::size_t>(c);
      const bool seen = s <= t && s < Tn && t < Tn;
      const float p = seen ? expf(Sw[r * flash::ld_score + c] * scale - lse_s[wr]) : 0.0f;
      dSw[r * flash::ld_prob + c] = __float2bfloat16(p * (DPw[r * flash::ld_score + c] - delta_s[wr]));
    }
    __syncwarp();
    flash_accumulate(dQw, dSw, Ks, D);
    __syncwarp();
  }
  if (dq == nullptr || t >= Tn) return;
  float* g = dq + (b * Tn + t) * ld.q + h * static_cast<std::size_t>(D);
  for (int d = half; d < D; d += 2) g[d] += dQw[r * lda + d] * scale;
}

/// Whether attention on cuda_t runs in tiles on the tensor cores (this file): float data, BF16 math, a
/// head size that is a multiple of 16 up to 128, and T > D, so that what the forward saves, B H T (D + 1)
/// values, fits wherever (B, H, T, T) probabilities would.
template <class T>
bool flash_attention_applies(std::size_t Tn, std::size_t D) {
  return std::is_same_v<T, float> && cuda_math_mode() == cuda_math::bf16 && D % 16 == 0 && D >= 16 &&
         D <= 128 && Tn > D;
}

inline void flash_check_grid(std::size_t rows, const char* function) {
  if (rows > 65535)
    throw config_error(std::string(function) + ": " + std::to_string(rows) +
                       " (sequence, head) pairs exceed the 65535 blocks of a grid's second dimension");
}

inline void flash_attention_forward(float* out, float* saved, const float* q, const float* k, const float* v,
                                    std::size_t B, std::size_t Tn, std::size_t H, std::size_t KVH, std::size_t D,
                                    float scale, attention_ld ld) {
  flash_check_grid(B * H, "attention_forward");
  const int d = static_cast<int>(D);
  const std::size_t bytes = flash::forward_bytes(d);
  CAI_CUDA_CHECK(cudaFuncSetAttribute(flash_forward_kernel<float>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      static_cast<int>(bytes)));
  const dim3 grid(static_cast<unsigned>((Tn + flash::tile - 1) / flash::tile), static_cast<unsigned>(B * H));
  CAI_CUDA_LAUNCH_SHARED(flash_forward_kernel<float>, grid, flash::threads, bytes)(
      out, saved, q, k, v, B, Tn, H, KVH, d, scale, ld);
  CAI_CUDA_CHECK_LAUNCH("attention_forward (tiled, bf16)");
}

inline void flash_attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                                     const float* k, const float* v, const float* saved, std::size_t B,
                                     std::size_t Tn, std::size_t H, std::size_t KVH, std::size_t D, float scale,
                                     attention_ld ld) {
  flash_check_grid(B * H, "attention_backward");
  const int d = static_cast<int>(D);
  const std::size_t rows = B * H * Tn;
  const float* lse = saved;         // (B, H, T)
  const float* o = saved + rows;    // (B, H, T, D)
  float* delta = cuda_scratch<float>(rows, 1);  // delta: (B, H, T)
  CAI_CUDA_LAUNCH(flash_delta_kernel<float>, cuda_grid(rows * 32), cuda_block)(delta, dout, o, rows, Tn, H, d, ld.out);
  CAI_CUDA_CHECK_LAUNCH("attention_backward (tiled, bf16: row sums)");
  const unsigned tiles = static_cast<unsigned>((Tn + flash::tile - 1) / flash::tile);
  if (dk != nullptr || dv != nullptr) {
    const std::size_t bytes = flash::backward_kv_bytes(d);
    CAI_CUDA_CHECK(cudaFuncSetAttribute(flash_backward_kv_kernel<float>,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
    CAI_CUDA_LAUNCH_SHARED(flash_backward_kv_kernel<float>, dim3(tiles, static_cast<unsigned>(B * KVH)),
                           flash::threads, bytes)(dk, dv, dout, q, k, v, lse, delta, Tn, H, KVH, d, scale, ld);
    CAI_CUDA_CHECK_LAUNCH("attention_backward (tiled, bf16: keys and values)");
  }
  if (dq != nullptr) {
    const std::size_t bytes = flash::backward_q_bytes(d);
    CAI_CUDA_CHECK(cudaFuncSetAttribute(flash_backward_q_kernel<float>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(bytes)));
    CAI_CUDA_LAUNCH_SHARED(flash_backward_q_kernel<float>, dim3(tiles, static_cast<unsigned>(B * H)), flash::threads,
                           bytes)(dq, dout, q, k, v, lse, delta, Tn, H, KVH, d, scale, ld);
    CAI_CUDA_CHECK_LAUNCH("attention_backward (tiled, bf16: queries)");
  }
}

}  // namespace cai::detail
