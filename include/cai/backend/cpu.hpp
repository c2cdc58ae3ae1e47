/// @file backend/cpu.hpp
/// The CPU backend's kernels: forward/backward pairs over plain row-major buffers (llm.c's habit), each
/// taking the backend tag first (Thrust's habit), so that `transformer<Backend>` and the losses call
/// `matmul_forward(Backend{}, ...)` and the CUDA backend supplies the same names for `cuda_t`.
///
/// Conventions:
///  - Every buffer has a shape comment, e.g. `// out: (N, OC)`; all buffers are row-major and contiguous.
///  - Backward functions ACCUMULATE into their gradient buffers (`+=`), so a parameter used twice (tied
///    embeddings) sums its gradients; a null gradient pointer skips that gradient.
///  - Linear weights are stored as PyTorch's `nn.Linear` does: (out_features, in_features).
///  - `T` is `float` (the model's compute type) or `double` (used by the finite-difference tests).
/// Matrix products go through Eigen 3.4; the rest are plain loops that the compiler vectorises.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "cai/backend/options.hpp"
#include "cai/backend/tags.hpp"
#include "cai/error.hpp"

/// Splits the loop that follows over OpenMP threads when cai is built with OpenMP (the `cai::cai` target
/// links it when CMake finds it) and the work is large enough; otherwise the loop runs serially. Every
/// parallel loop writes disjoint outputs, so results do not depend on the number of threads.
#if defined(_OPENMP)
#define CAI_DETAIL_PRAGMA(x) _Pragma(#x)
#define CAI_PARALLEL_FOR(work) CAI_DETAIL_PRAGMA(omp parallel for schedule(static) if ((work) > 32768))
#else
#define CAI_PARALLEL_FOR(work)
#endif

namespace cai {

namespace detail {
template <class T>
using row_matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using matrix_map = Eigen::Map<row_matrix<T>>;
template <class T>
using const_matrix_map = Eigen::Map<const row_matrix<T>>;
template <class T>
using vector_map = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, 1>>;
template <class T>
using const_vector_map = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>;
}  // namespace detail

// ---------------------------------------------------------------------------------------------------
// Element-wise helpers that the model composes layers with

/// out = a + b
template <class T>
void add_forward(cpu_t, T* out, const T* a, const T* b, std::size_t n) {
  // out, a, b: (n)
  for (std::size_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

/// out += a
template <class T>
void accumulate(cpu_t, T* out, const T* a, std::size_t n) {
  // out, a: (n)
  for (std::size_t i = 0; i < n; ++i) out[i] += a[i];
}

/// Splits the rows of a fused projection (N, q_width + 2 kv_width) into q (N, q_width), k and v
/// (N, kv_width); a null destination is skipped.
template <class T>
void split_columns(cpu_t, T* q, T* k, T* v, const T* fused, std::size_t N, std::size_t q_width, std::size_t kv_width) {
  const std::size_t W = q_width + 2 * kv_width;
  for (std::size_t n = 0; n < N; ++n) {
    const T* row = fused + n * W;
    std::copy_n(row, q_width, q + n * q_width);
    std::copy_n(row + q_width, kv_width, k + n * kv_width);
    std::copy_n(row + q_width + kv_width, kv_width, v + n * kv_width);
  }
}

/// The inverse of `split_columns`: writes q, k and v side by side into fused rows.
template <class T>
void merge_columns(cpu_t, T* fused, const T* q, const T* k, const T* v, std::size_t N, std::size_t q_width,
                   std::size_t kv_width) {
  const std::size_t W = q_width + 2 * kv_width;
  for (std::size_t n = 0; n < N; ++n) {
    T* row = fused + n * W;
    std::copy_n(q + n * q_width, q_width, row);
    std::copy_n(k + n * kv_width, kv_width, row + q_width);
    std::copy_n(v + n * kv_width, kv_width, row + q_width + kv_width);
  }
}

// ---------------------------------------------------------------------------------------------------
// Embedding

/// out[n, :] = table[ids[n], :]
/// @throws validation_error for an id outside [0, V).
template <class T>
void embedding_forward(cpu_t, T* out, const std::int32_t* ids, const T* table, std::size_t N, std::size_t C,
                       std::size_t V) {
  // out: (N, C)   ids: (N)   table: (V, C)
  for (std::size_t n = 0; n < N; ++n) {
    const auto id = ids[n];
    if (id < 0 || static_cast<std::size_t>(id) >= V)
      throw validation_error("embedding_forward: token id " + std::to_string(id) + " at position " +
                             std::to_string(n) + " is outside the vocabulary of " + std::to_string(V));
    std::copy_n(table + static_cast<std::size_t>(id) * C, C, out + n * C);
  }
}

/// dtable[ids[n], :] += dout[n, :]
template <class T>
void embedding_backward(cpu_t, T* dtable, const T* dout, const std::int32_t* ids, std::size_t N, std::size_t C) {
  // dtable: (V, C)   dout: (N, C)   ids: (N)
  for (std::size_t n = 0; n < N; ++n) {
    T* row = dtable + static_cast<std::size_t>(ids[n]) * C;
    const T* g = dout + n * C;
    for (std::size_t c = 0; c < C; ++c) row[c] += g[c];
  }
}

// ---------------------------------------------------------------------------------------------------
// Linear layer

/// out = in @ weight^T + bias (bias may be null).
template <class T>
void matmul_forward(cpu_t, T* out, const T* in, const T* weight, const T* bias, std::size_t N, std::size_t C,
                    std::size_t OC) {
  // out: (N, OC)   in: (N, C)   weight: (OC, C)   bias: (OC)
  detail::matrix_map<T> o(out, static_cast<Eigen::Index>(N), static_cast<Eigen::Index>(OC));
  detail::const_matrix_map<T> x(in, static_cast<Eigen::Index>(N), static_cast<Eigen::Index>(C));
  detail::const_matrix_map<T> w(weight, static_cast<Eigen::Index>(OC), static_cast<Eigen::Index>(C));
  o.noalias() = x * w.transpose();
  if (bias != nullptr) {
    detail::const_vector_map<T> b(bias, static_cast<Eigen::Index>(OC));
    o.rowwise() += b.transpose();
  }
}

/// din += dout @ weight; dweight += dout^T @ in; dbias += column sums of dout. Null gradients are skipped.
template <class T>
void matmul_backward(cpu_t, T* din, T* dweight, T* dbias, const T* dout, const T* in, const T* weight,
                     std::size_t N, std::size_t C, std::size_t OC) {
  // din: (N, C)   dweight: (OC, C)   dbias: (OC)   dout: (N, OC)   in: (N, C)   weight: (OC, C)
  const auto n = static_cast<Eigen::Index>(N), c = static_cast<Eigen::Index>(C), oc = static_cast<Eigen::Index>(OC);
  detail::const_matrix_map<T> g(dout, n, oc);
  if (din != nullptr) {
    detail::matrix_map<T> dx(din, n, c);
    detail::const_matrix_map<T> w(weight, oc, c);
    dx.noalias() += g * w;
  }
  if (dweight != nullptr) {
    detail::matrix_map<T> dw(dweight, oc, c);
    detail::const_matrix_map<T> x(in, n, c);
    dw.noalias() += g.transpose() * x;
  }
  if (dbias != nullptr) {
    detail::vector_map<T> db(dbias, oc);
    db += g.colwise().sum().transpose();
  }
}

// ---------------------------------------------------------------------------------------------------
// LayerNorm (GPT-2) and RMSNorm (Llama)

/// out = (in - mean) * rstd * weight + bias, per row; saves mean and rstd for the backward pass.
template <class T>
void layernorm_forward(cpu_t, T* out, T* mean, T* rstd, const T* in, const T* weight, const T* bias,
                       std::size_t N, std::size_t C, T eps) {
  // out: (N, C)   mean, rstd: (N)   in: (N, C)   weight, bias: (C)
  CAI_PARALLEL_FOR(N * C)
  for (std::size_t n = 0; n < N; ++n) {
    const T* x = in + n * C;
    T m = 0;
    for (std::size_t c = 0; c < C; ++c) m += x[c];
    m /= static_cast<T>(C);
    T v = 0;
    for (std::size_t c = 0; c < C; ++c) v += (x[c] - m) * (x[c] - m);
    v /= static_cast<T>(C);
    const T s = T(1) / std::sqrt(v + eps);
    T* o = out + n * C;
    for (std::size_t c = 0; c < C; ++c) o[c] = (x[c] - m) * s * weight[c] + (bias != nullptr ? bias[c] : T(0));
    mean[n] = m;
    rstd[n] = s;
  }
}

template <class T>
void layernorm_backward(cpu_t, T* din, T* dweight, T* dbias, const T* dout, const T* in, const T* weight,
                        const T* mean, const T* rstd, std::size_t N, std::size_t C) {
  // din: (N, C)   dweight, dbias: (C)   dout, in: (N, C)   weight: (C)   mean, rstd: (N)
  if (din != nullptr) {
    CAI_PARALLEL_FOR(N * C)
    for (std::size_t n = 0; n < N; ++n) {
      const T* x = in + n * C;
      const T* g = dout + n * C;
      const T m = mean[n], s = rstd[n];
      T g_mean = 0, g_norm_mean = 0;  // means of dnorm and dnorm * norm
      for (std::size_t c = 0; c < C; ++c) {
        const T norm = (x[c] - m) * s;
        const T dnorm = weight[c] * g[c];
        g_mean += dnorm;
        g_norm_mean += dnorm * norm;
      }
      g_mean /= static_cast<T>(C);
      g_norm_mean /= static_cast<T>(C);
      for (std::size_t c = 0; c < C; ++c) {
        const T norm = (x[c] - m) * s;
        din[n * C + c] += (weight[c] * g[c] - g_mean - norm * g_norm_mean) * s;
      }
    }
  }
  if (dweight == nullptr && dbias == nullptr) return;
  // the parameter gradients sum over rows: one column per thread, rows in order
  CAI_PARALLEL_FOR(N * C)
  for (std::size_t c = 0; c < C; ++c) {
    T dw = 0, db = 0;
    for (std::size_t n = 0; n < N; ++n) {
      const T g = dout[n * C + c];
      dw += (in[n * C + c] - mean[n]) * rstd[n] * g;
      db += g;
    }
    if (dweight != nullptr) dweight[c] += dw;
    if (dbias != nullptr) dbias[c] += db;
  }
}

/// out = in * rstd * weight, rstd = 1 / sqrt(mean(in^2) + eps), per row; saves rstd.
template <class T>
void rmsnorm_forward(cpu_t, T* out, T* rstd, const T* in, const T* weight, std::size_t N, std::size_t C, T eps) {
  // out: (N, C)   rstd: (N)   in: (N, C)   weight: (C)
  CAI_PARALLEL_FOR(N * C)
  for (std::size_t n = 0; n < N; ++n) {
    const T* x = in + n * C;
    T ss = 0;
    for (std::size_t c = 0; c < C; ++c) ss += x[c] * x[c];
    const T s = T(1) / std::sqrt(ss / static_cast<T>(C) + eps);
    T* o = out + n * C;
    for (std::size_t c = 0; c < C; ++c) o[c] = x[c] * s * weight[c];
    rstd[n] = s;
  }
}

template <class T>
void rmsnorm_backward(cpu_t, T* din, T* dweight, const T* dout, const T* in, const T* weight, const T* rstd,
                      std::size_t N, std::size_t C) {
  // din: (N, C)   dweight: (C)   dout, in: (N, C)   weight: (C)   rstd: (N)
  if (din != nullptr) {
    CAI_PARALLEL_FOR(N * C)
    for (std::size_t n = 0; n < N; ++n) {
      const T* x = in + n * C;
      const T* g = dout + n * C;
      const T s = rstd[n];
      T dot = 0;  // sum of dnorm * x
      for (std::size_t c = 0; c < C; ++c) dot += weight[c] * g[c] * x[c];
      const T k = dot * s * s * s / static_cast<T>(C);
      for (std::size_t c = 0; c < C; ++c) din[n * C + c] += weight[c] * g[c] * s - x[c] * k;
    }
  }
  if (dweight == nullptr) return;
  CAI_PARALLEL_FOR(N * C)
  for (std::size_t c = 0; c < C; ++c) {
    T dw = 0;
    for (std::size_t n = 0; n < N; ++n) dw += in[n * C + c] * rstd[n] * dout[n * C + c];
    dweight[c] += dw;
  }
}

// ---------------------------------------------------------------------------------------------------
// Activations

namespace detail {
template <class T>
constexpr T gelu_k0 = T(0.7978845608028654);  // sqrt(2 / pi)
template <class T>
constexpr T gelu_k1 = T(0.044715);
}  // namespace detail

/// GELU, tanh form (GPT-2): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
template <class T>
void gelu_forward(cpu_t, T* out, const T* in, std::size_t n) {
  // out, in: (n)
  CAI_PARALLEL_FOR(n * 16)
  for (std::size_t i = 0; i < n; ++i) {
    const T x = in[i];
    out[i] = T(0.5) * x * (T(1) + std::tanh(detail::gelu_k0<T> * (x + detail::gelu_k1<T> * x * x * x)));
  }
}

template <class T>
void gelu_backward(cpu_t, T* din, const T* in, const T* dout, std::size_t n) {
  // din, in, dout: (n)
  CAI_PARALLEL_FOR(n * 16)
  for (std::size_t i = 0; i < n; ++i) {
    const T x = in[i];
    const T u = detail::gelu_k0<T> * (x + detail::gelu_k1<T> * x * x * x);
    const T t = std::tanh(u);
    const T du = detail::gelu_k0<T> * (T(1) + T(3) * detail::gelu_k1<T> * x * x);
    din[i] += dout[i] * (T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * du);
  }
}

/// SwiGLU (Llama's MLP): out = silu(gate) * up, silu(x) = x / (1 + exp(-x)).
template <class T>
void swiglu_forward(cpu_t, T* out, const T* gate, const T* up, std::size_t n) {
  // out, gate, up: (n)
  CAI_PARALLEL_FOR(n * 16)
  for (std::size_t i = 0; i < n; ++i) {
    const T g = gate[i];
    out[i] = g / (T(1) + std::exp(-g)) * up[i];
  }
}

template <class T>
void swiglu_backward(cpu_t, T* dgate, T* dup, const T* gate, const T* up, const T* dout, std::size_t n) {
  // dgate, dup, gate, up, dout: (n)
  CAI_PARALLEL_FOR(n * 16)
  for (std::size_t i = 0; i < n; ++i) {
    const T g = gate[i];
    const T sig = T(1) / (T(1) + std::exp(-g));
    const T silu = g * sig;
    if (dup != nullptr) dup[i] += dout[i] * silu;
    if (dgate != nullptr) dgate[i] += dout[i] * up[i] * sig * (T(1) + g * (T(1) - sig));
  }
}

// ---------------------------------------------------------------------------------------------------
// Rotary position embedding

namespace detail {
template <class T>
void rope_apply(T* x, const std::int32_t* positions, std::size_t BT, std::size_t H, std::size_t D, double theta,
                rope_style style, T sign) {
  const std::size_t half = D / 2;
  std::vector<double> freq(half);
  for (std::size_t i = 0; i < half; ++i) freq[i] = std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(D));
  CAI_PARALLEL_FOR(BT * H * D * 8)
  for (std::size_t bt = 0; bt < BT; ++bt) {
    const double p = positions[bt];
    for (std::size_t i = 0; i < half; ++i) {
      const T c = static_cast<T>(std::cos(p * freq[i]));
      const T sn = sign * static_cast<T>(std::sin(p * freq[i]));
      const std::size_t a = style == rope_style::half ? i : 2 * i;
      const std::size_t b = style == rope_style::half ? i + half : 2 * i + 1;
      for (std::size_t h = 0; h < H; ++h) {
        T* v = x + (bt * H + h) * D;
        const T x0 = v[a], x1 = v[b];
        v[a] = x0 * c - x1 * sn;
        v[b] = x0 * sn + x1 * c;
      }
    }
  }
}
}  // namespace detail

/// Rotates `x` in place by the angles of each token's position: x holds (B*T) rows of H heads of size D.
/// @pre D is even.
template <class T>
void rope_forward(cpu_t, T* x, const std::int32_t* positions, std::size_t BT, std::size_t H, std::size_t D,
                  double theta, rope_style style = rope_style::half) {
  // x: (BT, H, D)   positions: (BT)
  if (D % 2 != 0) throw config_error("rope_forward: the head size " + std::to_string(D) + " is odd");
  detail::rope_apply(x, positions, BT, H, D, theta, style, T(1));
}

/// The backward pass of RoPE: the rotation is orthogonal, so the gradient is rotated back, in place.
template <class T>
void rope_backward(cpu_t, T* dx, const std::int32_t* positions, std::size_t BT, std::size_t H, std::size_t D,
                   double theta, rope_style style = rope_style::half) {
  // dx: (BT, H, D)   positions: (BT)
  if (D % 2 != 0) throw config_error("rope_backward: the head size " + std::to_string(D) + " is odd");
  detail::rope_apply(dx, positions, BT, H, D, theta, style, T(-1));
}

// ---------------------------------------------------------------------------------------------------
// Causal grouped-query attention

/// out = softmax(q k^T / sqrt(D) + causal mask) v, per sequence and head; KVH key/value heads are shared
/// by H / KVH query heads each (grouped-query attention; KVH == H is multi-head attention).
/// Saves the attention probabilities for the backward pass.
/// @pre H % KVH == 0.
template <class T>
void attention_forward(cpu_t, T* out, T* att, const T* q, const T* k, const T* v, std::size_t B, std::size_t Tn,
                       std::size_t H, std::size_t KVH, std::size_t D) {
  // out: (B, T, H, D)   att: (B, H, T, T)   q: (B, T, H, D)   k, v: (B, T, KVH, D)
  if (KVH == 0 || H % KVH != 0)
    throw config_error("attention_forward: " + std::to_string(H) + " query heads cannot share " +
                       std::to_string(KVH) + " key/value heads");
  const std::size_t group = H / KVH;
  const T scale = T(1) / std::sqrt(static_cast<T>(D));
  CAI_PARALLEL_FOR(B * H * Tn * Tn * D)
  for (std::size_t bh = 0; bh < B * H; ++bh) {
      const std::size_t b = bh / H, h = bh % H;
      const std::size_t kh = h / group;
      for (std::size_t t = 0; t < Tn; ++t) {
        const T* qt = q + ((b * Tn + t) * H + h) * D;
        T* a = att + ((b * H + h) * Tn + t) * Tn;
        T maxv = -std::numeric_limits<T>::infinity();
        for (std::size_t s = 0; s <= t; ++s) {
          const T* ks = k + ((b * Tn + s) * KVH + kh) * D;
          T dot = 0;
          for (std::size_t d = 0; d < D; ++d) dot += qt[d] * ks[d];
          a[s] = dot * scale;
          maxv = std::max(maxv, a[s]);
        }
        T sum = 0;
        for (std::size_t s = 0; s <= t; ++s) {
          a[s] = std::exp(a[s] - maxv);
          sum += a[s];
        }
        for (std::size_t s = 0; s <= t; ++s) a[s] /= sum;
        for (std::size_t s = t + 1; s < Tn; ++s) a[s] = 0;
        T* o = out + ((b * Tn + t) * H + h) * D;
        std::fill_n(o, D, T(0));
        for (std::size_t s = 0; s <= t; ++s) {
          const T* vs = v + ((b * Tn + s) * KVH + kh) * D;
          for (std::size_t d = 0; d < D; ++d) o[d] += a[s] * vs[d];
        }
      }
    }
}

template <class T>
void attention_backward(cpu_t, T* dq, T* dk, T* dv, const T* dout, const T* q, const T* k, const T* v, const T* att,
                        std::size_t B, std::size_t Tn, std::size_t H, std::size_t KVH, std::size_t D) {
  // dq: (B, T, H, D)   dk, dv: (B, T, KVH, D)   dout, q: (B, T, H, D)   k, v: (B, T, KVH, D)   att: (B, H, T, T)
  const std::size_t group = H / KVH;
  const T scale = T(1) / std::sqrt(static_cast<T>(D));
  // one (sequence, key/value head) per iteration: it alone writes that head's dk and dv, and the dq of
  // the query heads that share it
  CAI_PARALLEL_FOR(B * H * Tn * Tn * D)
  for (std::size_t bk = 0; bk < B * KVH; ++bk) {
    const std::size_t b = bk / KVH, kh = bk % KVH;
    std::vector<T> datt(Tn);
    for (std::size_t h = kh * group; h < (kh + 1) * group; ++h) {
      for (std::size_t t = 0; t < Tn; ++t) {
        const T* a = att + ((b * H + h) * Tn + t) * Tn;
        const T* g = dout + ((b * Tn + t) * H + h) * D;
        // through the weighted sum of values
        T dot_sum = 0;
        for (std::size_t s = 0; s <= t; ++s) {
          const T* vs = v + ((b * Tn + s) * KVH + kh) * D;
          T* dvs = dv + ((b * Tn + s) * KVH + kh) * D;
          T da = 0;
          for (std::size_t d = 0; d < D; ++d) {
            da += g[d] * vs[d];
            dvs[d] += a[s] * g[d];
          }
          datt[s] = da;
          dot_sum += da * a[s];
        }
        // through the softmax and the scaled dot products
        const T* qt = q + ((b * Tn + t) * H + h) * D;
        T* dqt = dq + ((b * Tn + t) * H + h) * D;
        for (std::size_t s = 0; s <= t; ++s) {
          const T dscore = a[s] * (datt[s] - dot_sum) * scale;
          const T* ks = k + ((b * Tn + s) * KVH + kh) * D;
          T* dks = dk + ((b * Tn + s) * KVH + kh) * D;
          for (std::size_t d = 0; d < D; ++d) {
            dqt[d] += dscore * ks[d];
            dks[d] += dscore * qt[d];
          }
        }
      }
    }
  }
}

/// Attention of new query rows over a key/value cache (KV-cached decoding): row n belongs to the
/// sequence in cache slot `slots[n]` at absolute position `positions[n]`, and attends to that slot's
/// positions 0..positions[n] (its own key and value must already be in the cache).
template <class T>
void attention_cached_forward(cpu_t, T* out, const T* q, const T* kcache, const T* vcache, const std::int32_t* slots,
                              const std::int32_t* positions, std::size_t N, std::size_t max_len, std::size_t H,
                              std::size_t KVH, std::size_t D) {
  // out, q: (N, H, D)   kcache, vcache: (slots, max_len, KVH, D)   slots, positions: (N)
  const std::size_t group = H / KVH;
  const T scale = T(1) / std::sqrt(static_cast<T>(D));
  for (std::size_t n = 0; n < N; ++n)  // checked before the parallel loop, which must not throw
    if (static_cast<std::size_t>(positions[n]) >= max_len)
      throw config_error("attention_cached_forward: position " + std::to_string(positions[n]) +
                         " is beyond the cache length " + std::to_string(max_len));
  CAI_PARALLEL_FOR(N * H * max_len * D)
  for (std::size_t n = 0; n < N; ++n) {
    std::vector<T> a(max_len);
    const std::size_t slot = static_cast<std::size_t>(slots[n]);
    const std::size_t len = static_cast<std::size_t>(positions[n]) + 1;
    const T* kbase = kcache + slot * max_len * KVH * D;
    const T* vbase = vcache + slot * max_len * KVH * D;
    for (std::size_t h = 0; h < H; ++h) {
      const std::size_t kh = h / group;
      const T* qh = q + (n * H + h) * D;
      T maxv = -std::numeric_limits<T>::infinity();
      for (std::size_t s = 0; s < len; ++s) {
        const T* ks = kbase + (s * KVH + kh) * D;
        T dot = 0;
        for (std::size_t d = 0; d < D; ++d) dot += qh[d] * ks[d];
        a[s] = dot * scale;
        maxv = std::max(maxv, a[s]);
      }
      T sum = 0;
      for (std::size_t s = 0; s < len; ++s) sum += (a[s] = std::exp(a[s] - maxv));
      T* o = out + (n * H + h) * D;
      std::fill_n(o, D, T(0));
      for (std::size_t s = 0; s < len; ++s) {
        const T w = a[s] / sum;
        const T* vs = vbase + (s * KVH + kh) * D;
        for (std::size_t d = 0; d < D; ++d) o[d] += w * vs[d];
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Softmax and cross-entropy

/// Row-wise softmax: out[n, :] = softmax(in[n, :]).
template <class T>
void softmax_forward(cpu_t, T* out, const T* in, std::size_t N, std::size_t V) {
  // out, in: (N, V)
  CAI_PARALLEL_FOR(N * V)
  for (std::size_t n = 0; n < N; ++n) {
    const T* x = in + n * V;
    T* o = out + n * V;
    const T m = *std::max_element(x, x + V);
    T sum = 0;
    for (std::size_t i = 0; i < V; ++i) sum += (o[i] = std::exp(x[i] - m));
    for (std::size_t i = 0; i < V; ++i) o[i] /= sum;
  }
}

/// Token cross-entropy: losses[n] = logsumexp(logits[n, :]) - logits[n, targets[n]]; a target of -1 masks
/// the row (loss 0). Saves the log-sum-exp of each row for the backward pass.
/// @throws validation_error for a target outside [-1, V).
template <class T>
void crossentropy_forward(cpu_t, T* losses, T* lse, const T* logits, const std::int32_t* targets, std::size_t N,
                          std::size_t V) {
  // losses, lse: (N)   logits: (N, V)   targets: (N)
  for (std::size_t n = 0; n < N; ++n)  // checked before the parallel loop, which must not throw
    if (targets[n] < -1 || targets[n] >= static_cast<std::int32_t>(V))
      throw validation_error("crossentropy_forward: target " + std::to_string(targets[n]) + " at row " +
                             std::to_string(n) + " is outside the vocabulary of " + std::to_string(V));
  CAI_PARALLEL_FOR(N * V)
  for (std::size_t n = 0; n < N; ++n) {
    const T* x = logits + n * V;
    const T m = *std::max_element(x, x + V);
    T sum = 0;
    for (std::size_t i = 0; i < V; ++i) sum += std::exp(x[i] - m);
    lse[n] = m + std::log(sum);
    const auto target = targets[n];
    losses[n] = target < 0 ? T(0) : lse[n] - x[target];
  }
}

/// dlogits[n, :] += dlosses[n] * (softmax(logits[n, :]) - onehot(targets[n])); masked rows get nothing.
template <class T>
void crossentropy_backward(cpu_t, T* dlogits, const T* dlosses, const T* logits, const T* lse,
                           const std::int32_t* targets, std::size_t N, std::size_t V) {
  // dlogits, logits: (N, V)   dlosses, lse: (N)   targets: (N)
  CAI_PARALLEL_FOR(N * V)
  for (std::size_t n = 0; n < N; ++n) {
    if (targets[n] < 0) continue;
    const T* x = logits + n * V;
    T* g = dlogits + n * V;
    for (std::size_t i = 0; i < V; ++i) g[i] += dlosses[n] * std::exp(x[i] - lse[n]);
    g[targets[n]] -= dlosses[n];
  }
}

}  // namespace cai
