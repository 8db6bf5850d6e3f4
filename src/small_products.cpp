#include "small_products.hpp"

#include <immintrin.h>

#include <algorithm>

// GCC 12's AVX-512 intrinsics start some results from _mm512_undefined_*(), which its own
// -Wmaybe-uninitialized and -Wuninitialized then report inside its headers.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include "wide.hpp"

// Two kernels, each keeping a block of results in 24 of the 32 registers (tile shapes measured
// on W2's first layer; docs/design-notes.md):
// - dot: a block of R rows of X × C columns of W, each result sixteen partial sums of
//   X(r, k)·W(k, j) (lane k mod 16) through K, then added across the lanes. X's rows and W's
//   columns are both contiguous in k: neither is packed.
// - axpy: a block of P outputs × 16·V consecutive k, each a sum over q of a scalar s(q, p) times
//   a row b(q, k .. k + 16·V) contiguous in k. For ∂L/∂W: q the batch's rows, b X's rows, s ∂L/∂Z,
//   the outputs W's columns; for ∂L/∂X: q the layer's outputs, b W's columns, s ∂L/∂Z's rows.
// A partial vector at the end of k is read and written under a mask, with the same operations in
// its lanes as a whole one: every element's sum is the same whichever block computes it.

namespace chainrule::detail {
namespace {

#define CHAINRULE_AVX512 __attribute__((target("avx512f")))

__mmask16 first_lanes(Index n) {
  return __mmask16(n >= 16 ? 0xffffU : (1U << n) - 1U);
}

template <int R, int C>
CHAINRULE_AVX512 void dot_tile(Index K, const float* x, Index ldx, const float* w, Index ldw,
                               float* z, Index ldz) {
  __m512 acc[R][C];
#pragma GCC unroll 8
  for (int a = 0; a < R; ++a)
#pragma GCC unroll 8
    for (int b = 0; b < C; ++b)
      acc[a][b] = _mm512_setzero_ps();
  for (Index k = 0; k < K; k += 16) {
    const __mmask16 m = first_lanes(K - k);  // all but in the last block when 16 ∤ K
    __m512 xv[R];
#pragma GCC unroll 8
    for (int a = 0; a < R; ++a)
      xv[a] = _mm512_maskz_loadu_ps(m, x + a * ldx + k);
#pragma GCC unroll 8
    for (int b = 0; b < C; ++b) {
      const __m512 wv = _mm512_maskz_loadu_ps(m, w + b * ldw + k);
#pragma GCC unroll 8
      for (int a = 0; a < R; ++a)
        acc[a][b] = _mm512_fmadd_ps(xv[a], wv, acc[a][b]);
    }
  }
#pragma GCC unroll 8
  for (int a = 0; a < R; ++a)
#pragma GCC unroll 8
    for (int b = 0; b < C; ++b)
      z[a * ldz + b] = _mm512_reduce_add_ps(acc[a][b]);
}

constexpr int kDotRows = 4, kDotCols = 6;

template <int R>
CHAINRULE_AVX512 void dot_rows(Index n, Index K, const float* x, Index ldx, const float* w,
                               Index ldw, float* z, Index ldz) {
  Index j = 0;
  for (; j + kDotCols <= n; j += kDotCols)
    dot_tile<R, kDotCols>(K, x, ldx, w + j * ldw, ldw, z + j, ldz);
  w += j * ldw, z += j;
  switch (n - j) {
    case 5:
      return dot_tile<R, 5>(K, x, ldx, w, ldw, z, ldz);
    case 4:
      return dot_tile<R, 4>(K, x, ldx, w, ldw, z, ldz);
    case 3:
      return dot_tile<R, 3>(K, x, ldx, w, ldw, z, ldz);
    case 2:
      return dot_tile<R, 2>(K, x, ldx, w, ldw, z, ldz);
    case 1:
      return dot_tile<R, 1>(K, x, ldx, w, ldw, z, ldz);
    default:
      return;
  }
}

CHAINRULE_AVX512 void xw_avx512(Index rows, Index n, Index K, const float* x, Index ldx,
                                const float* w, Index ldw, float* z, Index ldz) {
  Index r = 0;
  for (; r + kDotRows <= rows; r += kDotRows)
    dot_rows<kDotRows>(n, K, x + r * ldx, ldx, w, ldw, z + r * ldz, ldz);
  x += r * ldx, z += r * ldz;
  switch (rows - r) {
    case 3:
      return dot_rows<3>(n, K, x, ldx, w, ldw, z, ldz);
    case 2:
      return dot_rows<2>(n, K, x, ldx, w, ldw, z, ldz);
    case 1:
      return dot_rows<1>(n, K, x, ldx, w, ldw, z, ldz);
    default:
      return;
  }
}

// out(p, k .. k + 16·V) (+)= Σ_q s[q·sq + p·sp] · b[q·ldb + k ...], out(p, ·) at out + p·op; the
// last of the V vectors under `last`.
template <int P, int V>
CHAINRULE_AVX512 void axpy_tile(Index Q, const float* b, Index ldb, const float* s, Index sq,
                                Index sp, float* out, Index op, bool accumulate, __mmask16 last) {
  const auto mask = [&](int v) { return v == V - 1 ? last : __mmask16(0xffff); };
  __m512 acc[P][V];
#pragma GCC unroll 8
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v)
      acc[p][v] =
          accumulate ? _mm512_maskz_loadu_ps(mask(v), out + p * op + 16 * v) : _mm512_setzero_ps();
  for (Index q = 0; q < Q; ++q) {
    const float* bq = b + q * ldb;
    __m512 bv[V];
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v)
      bv[v] = _mm512_maskz_loadu_ps(mask(v), bq + 16 * v);
    const float* sq_ = s + q * sq;
#pragma GCC unroll 8
    for (int p = 0; p < P; ++p) {
      const __m512 sv = _mm512_set1_ps(sq_[p * sp]);
#pragma GCC unroll 8
      for (int v = 0; v < V; ++v)
        acc[p][v] = _mm512_fmadd_ps(bv[v], sv, acc[p][v]);
    }
  }
#pragma GCC unroll 8
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v)
      _mm512_mask_storeu_ps(out + p * op + 16 * v, mask(v), acc[p][v]);
}

constexpr int kAxpyOutputs = 6, kAxpyVectors = 4;

// The P outputs starting at `out` over k < K: blocks of 64 k, then of 16, then the rest.
template <int P>
CHAINRULE_AVX512 void axpy_outputs(Index Q, Index K, const float* b, Index ldb, const float* s,
                                   Index sq, Index sp, float* out, Index op, bool accumulate) {
  Index k = 0;
  for (; k + 16 * kAxpyVectors <= K; k += 16 * kAxpyVectors)
    axpy_tile<P, kAxpyVectors>(Q, b + k, ldb, s, sq, sp, out + k, op, accumulate, 0xffff);
  for (; k < K; k += 16)
    axpy_tile<P, 1>(Q, b + k, ldb, s, sq, sp, out + k, op, accumulate, first_lanes(K - k));
}

// Outputs p < n, each `sp` apart in s and `op` apart in out.
CHAINRULE_AVX512 void axpy_avx512(Index n, Index Q, Index K, const float* b, Index ldb,
                                  const float* s, Index sq, Index sp, float* out, Index op,
                                  bool accumulate) {
  Index p = 0;
  for (; p + kAxpyOutputs <= n; p += kAxpyOutputs)
    axpy_outputs<kAxpyOutputs>(Q, K, b, ldb, s + p * sp, sq, sp, out + p * op, op, accumulate);
  s += p * sp, out += p * op;
  switch (n - p) {
    case 5:
      return axpy_outputs<5>(Q, K, b, ldb, s, sq, sp, out, op, accumulate);
    case 4:
      return axpy_outputs<4>(Q, K, b, ldb, s, sq, sp, out, op, accumulate);
    case 3:
      return axpy_outputs<3>(Q, K, b, ldb, s, sq, sp, out, op, accumulate);
    case 2:
      return axpy_outputs<2>(Q, K, b, ldb, s, sq, sp, out, op, accumulate);
    case 1:
      return axpy_outputs<1>(Q, K, b, ldb, s, sq, sp, out, op, accumulate);
    default:
      return;
  }
}

// Two vectors' 128-bit lanes regrouped: lo = (a₀, a₂, b₀, b₂), hi = (a₁, a₃, b₁, b₃).
CHAINRULE_AVX512 inline void even_odd_lanes(__m512 a, __m512 b, __m512& lo, __m512& hi) {
  lo = _mm512_shuffle_f32x4(a, b, 0x88);
  hi = _mm512_shuffle_f32x4(a, b, 0xdd);
}

// A 16 × 16 tile of floats transposed: out[c·ldo + r] = in[r·ldi + c] (in's 16 rows
// interleaved in pairs of floats, then of float pairs, then their 128-bit lanes regrouped twice).
CHAINRULE_AVX512 void transpose_tile(const float* in, Index ldi, float* out, Index ldo) {
  __m512 r[16], t[16];
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i)
    r[i] = _mm512_loadu_ps(in + ldi * i);
#pragma GCC unroll 16
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
#pragma GCC unroll 16
  for (int i = 0; i < 16; i += 4)
    for (int h = 0; h < 2; ++h) {  // t[i + h] with t[i + h + 2], as pairs of floats
      const __m512d a = _mm512_castps_pd(t[i + h]), b = _mm512_castps_pd(t[i + h + 2]);
      r[i + 2 * h] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
      r[i + 2 * h + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
    }
#pragma GCC unroll 16
  for (int i = 0; i < 4; ++i) {
    even_odd_lanes(r[i], r[i + 4], t[i], t[i + 4]);
    even_odd_lanes(r[i + 8], r[i + 12], t[i + 8], t[i + 12]);
  }
#pragma GCC unroll 16
  for (int i = 0; i < 4; ++i) {
    even_odd_lanes(t[i], t[i + 8], r[i], r[i + 8]);
    even_odd_lanes(t[i + 4], t[i + 12], r[i + 4], r[i + 12]);
  }
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i)
    _mm512_storeu_ps(out + ldo * i, r[i]);
}

}  // namespace

bool small_products_available() {
  return cpu_width() == Width::avx512;
}

void transpose_weights(Index in, Index out, const float* w, float* wt) {
  constexpr Index kTile = 16;  // 16 of W's columns by 16 of its rows, in registers
  for (Index j0 = 0; j0 < out; j0 += kTile)
    for (Index k0 = 0; k0 < in; k0 += kTile) {
      const Index j1 = std::min(out, j0 + kTile), k1 = std::min(in, k0 + kTile);
      if (j1 - j0 == kTile && k1 - k0 == kTile) {
        transpose_tile(w + k0 + in * j0, in, wt + k0 * out + j0, out);
        continue;
      }
      for (Index j = j0; j < j1; ++j)  // the edges
        for (Index k = k0; k < k1; ++k)
          wt[k * out + j] = w[k + in * j];
    }
}

void product_xw(Index rows, Index n, Index K, const float* x, Index ldx, const float* w, Index ldw,
                float* z, Index ldz) {
  xw_avx512(rows, n, K, x, ldx, w, ldw, z, ldz);
}

void product_xtd(Index rows, Index n, Index K, const float* x, Index ldx, const float* d, Index ldd,
                 float* g, Index ldg, bool accumulate) {
  // Outputs: G's columns j (s = D(·, j): sq = ldd, sp = 1); q: the rows, b: X's rows.
  axpy_avx512(n, rows, K, x, ldx, d, ldd, 1, g, ldg, accumulate);
}

void product_dwt(Index rows, Index m, Index N, const float* d, Index ldd, const float* w, Index ldw,
                 float* e, Index lde) {
  // Outputs: E's rows r (s = D(r, ·): sq = 1, sp = ldd); q: W's columns j, b: W(·, j).
  axpy_avx512(rows, N, m, w, ldw, d, 1, ldd, e, lde, false);
}

}  // namespace chainrule::detail
