// Matrix products with bfloat16 inputs and float32 sums, on the CPU's AVX512_BF16 instructions
// (vdpbf16ps): what `--dtype bfloat16` trains with. Each input is rounded to bfloat16 (nearest,
// ties to even; 8 significant bits), every product of two is exact in float32, and the sums are
// float32, as PyTorch's CPU autocast computes a bfloat16 matmul.
#pragma once

#include <cstdint>

#include "chainrule/types.hpp"

namespace chainrule::detail {

/// Whether this CPU runs the bfloat16 products (AVX512_BF16, asked at run time).
bool bf16_products_available();

/// x rounded to the nearest bfloat16 (ties to even), as a float: the value the products use.
float round_to_bf16(float x);

/// A matrix in memory: element (i, j) at data[i·row_stride + j·col_stride].
struct Strided {
  const float* data;
  Index row_stride, col_stride;
  float at(Index i, Index j) const { return data[i * row_stride + j * col_stride]; }
};

/// C (M×N) = A (M×K) · B (K×N), or C += A·B when `accumulate`, with A and B rounded to
/// bfloat16 and float32 sums. C(i, j) is at c[i·c_row_stride + j·c_col_stride]. Only where
/// bf16_products_available(). Works in buffers of the calling thread's own that grow to the
/// largest product and are kept: no allocation once the sizes are steady.
void gemm_bf16(Index M, Index N, Index K, Strided A, Strided B, float* c, Index c_row_stride,
               Index c_col_stride, bool accumulate);

}  // namespace chainrule::detail
