#include "bf16.hpp"

#include <immintrin.h>

// GCC 12's AVX-512 intrinsics start some results from _mm512_undefined_*(), which its own
// -Wmaybe-uninitialized then reports inside its headers.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstring>
#include <vector>

// The product is blocked as in GotoBLAS: B is packed into panels of kNr columns, A into rows
// of pairs, and a kernel keeps a kMr × kNr block of C in 24 registers while it runs through K,
// two k at a time: vdpbf16ps adds a[k]·b[k] + a[k+1]·b[k+1] to each float32 lane. A pair of
// bfloat16 (k even in the low half, k odd in the high half) is one 32-bit word.

namespace chainrule::detail {
namespace {

#define CHAINRULE_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

constexpr Index kMr = 6;    // rows of C per kernel call
constexpr Index kNr = 64;   // columns of C per kernel call: 4 registers of 16 floats
constexpr Index kMc = 192;  // rows of A per block (kMc × K pairs stay in the L2 cache)

// Nearest bfloat16, ties to even (NaN stays NaN), as vcvtneps2bf16 rounds a normal number.
std::uint16_t to_bf16(float x) {
  std::uint32_t u = std::bit_cast<std::uint32_t>(x);
  if ((u & 0x7fffffffU) > 0x7f800000U) return std::uint16_t((u >> 16) | 0x40U);
  u += 0x7fffU + ((u >> 16) & 1U);
  return std::uint16_t(u >> 16);
}

std::uint32_t pair(float lo, float hi) {
  return std::uint32_t(to_bf16(lo)) | (std::uint32_t(to_bf16(hi)) << 16);
}

__mmask16 first(Index n) {  // a mask of the first n of 16 lanes (none for n <= 0)
  return n >= 16 ? __mmask16(0xffff) : n <= 0 ? __mmask16(0) : __mmask16((1U << n) - 1U);
}

// Two vectors of 16 floats (k even, k odd) as 16 pairs.
CHAINRULE_BF16 __attribute__((always_inline)) inline __m512i pairs(__m512 even, __m512 odd) {
  const __m512i lo = _mm512_cvtepu16_epi32((__m256i)(_mm512_cvtneps_pbh(even)));
  const __m512i hi = _mm512_cvtepu16_epi32((__m256i)(_mm512_cvtneps_pbh(odd)));
  return _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16));
}

// A (M × K) as pairs: the pair (k = 2p, 2p + 1) of row i at out[i·rs + p·ps], rows M .. Mp - 1
// zero. Rows contiguous in k: rs = P, ps = 1; columns contiguous: rs = 1, ps = Mp.
CHAINRULE_BF16 void pack_a(Index M, Index K, Strided A, Index Mp, std::uint32_t* out, Index& rs,
                           Index& ps) {
  const Index P = (K + 1) / 2;
  if (A.col_stride == 1) {
    rs = P, ps = 1;
    for (Index i = 0; i < Mp; ++i) {
      std::uint32_t* o = out + i * P;
      if (i >= M) {
        std::fill(o, o + P, 0U);
        continue;
      }
      const float* a = A.data + i * A.row_stride;
      for (Index k = 0; k < K; k += 32) {  // 32 floats in, 16 pairs out
        const __m512 lo = _mm512_maskz_loadu_ps(first(K - k), a + k);
        const __m512 hi = _mm512_maskz_loadu_ps(first(K - k - 16), a + k + 16);
        const __m512i p = (__m512i)(_mm512_cvtne2ps_pbh(hi, lo));
        _mm512_mask_storeu_epi32(o + k / 2, first((K - k + 1) / 2), p);
      }
    }
    return;
  }
  rs = 1, ps = Mp;
  if (A.row_stride == 1) {
    for (Index p = 0; p < P; ++p) {
      const float* even = A.data + 2 * p * A.col_stride;
      const float* odd = even + A.col_stride;
      const bool has_odd = 2 * p + 1 < K;
      for (Index i = 0; i < Mp; i += 16) {
        const __mmask16 m = i < M ? first(M - i) : __mmask16(0);
        const __m512 e = _mm512_maskz_loadu_ps(m, even + i);
        const __m512 o = has_odd ? _mm512_maskz_loadu_ps(m, odd + i) : _mm512_setzero_ps();
        _mm512_mask_storeu_epi32(out + p * Mp + i, first(Mp - i), pairs(e, o));
      }
    }
    return;
  }
  for (Index p = 0; p < P; ++p)
    for (Index i = 0; i < Mp; ++i)
      out[p * Mp + i] =
          i < M ? pair(A.at(i, 2 * p), 2 * p + 1 < K ? A.at(i, 2 * p + 1) : 0.0F) : 0U;
}

// Transposes 16 vectors of 16 words: r[i] lane j becomes r[j] lane i. Three rounds: 32-bit and
// 64-bit unpacks within 128-bit lanes, then a 4 × 4 transpose of the 128-bit lanes.
CHAINRULE_BF16 __attribute__((always_inline)) inline void transpose16(__m512i r[16]) {
  __m512i t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int m = 0; m < 4; ++m) {  // u[4m + c], 128-bit lane L: column 4L + c of rows 4m .. 4m + 3
    u[4 * m] = _mm512_unpacklo_epi64(t[4 * m], t[4 * m + 2]);
    u[4 * m + 1] = _mm512_unpackhi_epi64(t[4 * m], t[4 * m + 2]);
    u[4 * m + 2] = _mm512_unpacklo_epi64(t[4 * m + 1], t[4 * m + 3]);
    u[4 * m + 3] = _mm512_unpackhi_epi64(t[4 * m + 1], t[4 * m + 3]);
  }
  for (int c = 0; c < 4; ++c) {
    const __m512i x0 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x44);
    const __m512i x1 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xEE);
    const __m512i y0 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x44);
    const __m512i y1 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xEE);
    r[c] = _mm512_shuffle_i32x4(x0, y0, 0x88);
    r[4 + c] = _mm512_shuffle_i32x4(x0, y0, 0xDD);
    r[8 + c] = _mm512_shuffle_i32x4(x1, y1, 0x88);
    r[12 + c] = _mm512_shuffle_i32x4(x1, y1, 0xDD);
  }
}

// pack_b for a B whose columns are contiguous in k (a layer's W in its forward product): the
// pairs of 16 columns, 16 pairs at a time, rounded as they are read and transposed in registers.
CHAINRULE_BF16 void pack_b_columns(Index K, Index N, Strided B, std::uint32_t* out) {
  const Index P = (K + 1) / 2, panels = (N + kNr - 1) / kNr;
  for (Index q = 0; q < panels; ++q)
    for (Index l = 0; l < kNr; l += 16)
      for (Index p = 0; p < P; p += 16) {
        __m512i r[16];
        for (Index t = 0; t < 16; ++t) {
          const Index j = q * kNr + l + t;
          if (j >= N) {
            r[t] = _mm512_setzero_si512();
            continue;
          }
          const float* col = B.data + j * B.col_stride + 2 * p;
          const __m512 lo = _mm512_maskz_loadu_ps(first(K - 2 * p), col);
          const __m512 hi = _mm512_maskz_loadu_ps(first(K - 2 * p - 16), col + 16);
          r[t] = (__m512i)(_mm512_cvtne2ps_pbh(hi, lo));
        }
        transpose16(r);
        for (Index t = 0; t < 16 && p + t < P; ++t)
          _mm512_storeu_si512(out + (q * P + p + t) * kNr + l, r[t]);
      }
}

// B (K × N) as panels of kNr columns: the pair (2p, 2p + 1) of column j = q·kNr + l at
// out[(q·P + p)·kNr + l], columns N .. and the missing k of an odd K zero.
CHAINRULE_BF16 void pack_b(Index K, Index N, Strided B, std::uint32_t* out) {
  if (B.row_stride == 1 && B.col_stride != 1) return pack_b_columns(K, N, B, out);
  const Index P = (K + 1) / 2, panels = (N + kNr - 1) / kNr;
  for (Index q = 0; q < panels; ++q)
    for (Index p = 0; p < P; ++p) {
      std::uint32_t* o = out + (q * P + p) * kNr;
      const bool has_odd = 2 * p + 1 < K;
      for (Index l = 0; l < kNr; l += 16) {
        const Index j = q * kNr + l;
        const __mmask16 m = j < N ? first(N - j) : __mmask16(0);
        __m512i v;
        if (B.col_stride == 1) {  // a row of B: 16 columns side by side
          // (a B contiguous in k is pack_b_columns's; any other layout is read one by one)
          const float* even = B.data + 2 * p * B.row_stride + j;
          const __m512 e = _mm512_maskz_loadu_ps(m, even);
          const __m512 od =
              has_odd ? _mm512_maskz_loadu_ps(m, even + B.row_stride) : _mm512_setzero_ps();
          v = pairs(e, od);
        } else {
          alignas(64) std::uint32_t w[16];
          for (Index t = 0; t < 16; ++t)
            w[t] =
                j + t < N ? pair(B.at(2 * p, j + t), has_odd ? B.at(2 * p + 1, j + t) : 0.0F) : 0U;
          v = _mm512_load_si512(w);
        }
        _mm512_storeu_si512(o + l, v);
      }
    }
}

// C[rows × cols] (= or +=) the kMr × kNr block of A's pairs a (a[i·rs + p·ps]) times the
// panel b, over P pairs. Rows and columns past `rows` and `cols` are computed and dropped.
CHAINRULE_BF16 void kernel(const std::uint32_t* a, Index rs, Index ps, const std::uint32_t* b,
                           Index P, float* c, Index c_rs, Index c_cs, Index rows, Index cols,
                           bool accumulate) {
  // C's block is wanted only at the end: asked for now, it arrives while the sums run.
  if (c_cs == 1)
    for (Index r = 0; r < std::min(rows, kMr); ++r)
      for (Index j = 0; j < std::min(cols, kNr); j += 16)
        _mm_prefetch(reinterpret_cast<const char*>(c + r * c_rs + j), _MM_HINT_T0);
  __m512 acc[kMr][4];
  for (auto& row : acc)
    for (__m512& v : row)
      v = _mm512_setzero_ps();
  for (Index p = 0; p < P; ++p) {
    const std::uint32_t* bp = b + p * kNr;
    const __m512bh b0 = (__m512bh)(_mm512_loadu_si512(bp));
    const __m512bh b1 = (__m512bh)(_mm512_loadu_si512(bp + 16));
    const __m512bh b2 = (__m512bh)(_mm512_loadu_si512(bp + 32));
    const __m512bh b3 = (__m512bh)(_mm512_loadu_si512(bp + 48));
    const std::uint32_t* ap = a + p * ps;
    for (Index r = 0; r < kMr; ++r) {
      const __m512bh x = (__m512bh)(_mm512_set1_epi32(int(ap[r * rs])));
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], x, b0);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], x, b1);
      acc[r][2] = _mm512_dpbf16_ps(acc[r][2], x, b2);
      acc[r][3] = _mm512_dpbf16_ps(acc[r][3], x, b3);
    }
  }
  for (Index r = 0; r < std::min(rows, kMr); ++r) {
    float* row = c + r * c_rs;
    if (c_cs == 1 && cols >= kNr) {  // (masked stores are slow on some CPUs: only at an edge)
      for (Index q = 0; q < 4; ++q) {
        __m512 v = acc[r][q];
        if (accumulate) v = _mm512_add_ps(_mm512_loadu_ps(row + q * 16), v);
        _mm512_storeu_ps(row + q * 16, v);
      }
      continue;
    }
    if (c_cs == 1) {
      for (Index q = 0; q < 4 && q * 16 < cols; ++q) {
        const __mmask16 m = first(cols - q * 16);
        __m512 v = acc[r][q];
        if (accumulate) v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, row + q * 16), v);
        _mm512_mask_storeu_ps(row + q * 16, m, v);
      }
      continue;
    }
    alignas(64) float t[kNr];
    for (Index q = 0; q < 4; ++q)
      _mm512_store_ps(t + q * 16, acc[r][q]);
    for (Index j = 0; j < std::min(cols, kNr); ++j)
      row[j * c_cs] = accumulate ? row[j * c_cs] + t[j] : t[j];
  }
}

CHAINRULE_BF16 void gemm(Index M, Index N, Index K, Strided A, Strided B, float* c, Index c_rs,
                         Index c_cs, bool accumulate) {
  thread_local std::vector<std::uint32_t> apack, bpack;
  const Index P = (K + 1) / 2, Mp = (M + kMr - 1) / kMr * kMr, panels = (N + kNr - 1) / kNr;
  if (apack.size() < std::size_t(Mp * P)) apack.resize(std::size_t(Mp * P));
  if (bpack.size() < std::size_t(panels * P * kNr)) bpack.resize(std::size_t(panels * P * kNr));
  Index rs = 0, ps = 0;
  pack_a(M, K, A, Mp, apack.data(), rs, ps);
  pack_b(K, N, B, bpack.data());
  for (Index i0 = 0; i0 < Mp; i0 += kMc)
    for (Index q = 0; q < panels; ++q) {
      const std::uint32_t* b = bpack.data() + q * P * kNr;
      const Index j = q * kNr;
      for (Index i = i0; i < std::min(i0 + kMc, Mp); i += kMr)
        kernel(apack.data() + i * rs, rs, ps, b, P, c + i * c_rs + j * c_cs, c_rs, c_cs, M - i,
               N - j, accumulate);
    }
}

}  // namespace

bool bf16_products_available() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl");
}

float round_to_bf16(float x) {
  return std::bit_cast<float>(std::uint32_t(to_bf16(x)) << 16);
}

void gemm_bf16(Index M, Index N, Index K, Strided A, Strided B, float* c, Index c_row_stride,
               Index c_col_stride, bool accumulate) {
  assert(bf16_products_available());
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate)
      for (Index i = 0; i < M; ++i)
        for (Index j = 0; j < N; ++j)
          c[i * c_row_stride + j * c_col_stride] = 0;
    return;
  }
  // C's rows are best written contiguous: where its columns are, work out Cᵀ = Bᵀ·Aᵀ instead.
  if (c_col_stride != 1 && c_row_stride == 1)
    return gemm(N, M, K, {B.data, B.col_stride, B.row_stride}, {A.data, A.col_stride, A.row_stride},
                c, c_col_stride, 1, accumulate);
  gemm(M, N, K, A, B, c, c_row_stride, c_col_stride, accumulate);
}

}  // namespace chainrule::detail
