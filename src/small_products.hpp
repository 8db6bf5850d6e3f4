// The float32 products of a layer whose weights fit a core's L2 cache (W2's 784 × 128 and smaller),
// on AVX-512 kernels of the library's own that read their operands where they lie, with no
// packing: measured against OpenBLAS's sgemm at W2's first layer (batch 64, data in cache, one
// core of an AMD EPYC with AVX-512), Z = X·W at 1.7× and ∂L/∂W = Xᵀ·∂L/∂Z at 2× its speed
// (docs/design-notes.md, "Products of our own"). Larger layers and larger batches keep
// OpenBLAS, whose blocking for the caches these kernels do not have.
//
// Each element is summed in one order, fixed by the shapes alone: Z(r, j) as sixteen lanes over
// k (k ≡ lane mod 16, in order of k), the lanes added by one fixed tree; ∂L/∂W(k, j) and
// ∂L/∂X(r, k) in order of r and of j. So a part of a product (some columns, some rows) gives
// the same bits as the whole product's part, and a network gives the same bits whichever way
// its threads share a layer's products.
#pragma once

#include "chainrule/types.hpp"

namespace chainrule::detail {

/// Whether this CPU runs the products below (AVX-512F, asked once).
bool small_products_available();

/// Whether a float32 layer of `in` inputs and `out` outputs, over a batch of `rows` rows, runs
/// its products here: where the CPU has them, and W (in × out) and the batch's inputs (rows ×
/// in) each fit in 512 KiB, half the L2 cache of the smallest AVX-512 core (the kernels read W
/// again for every few rows of the batch, and the batch again for every few of W's columns).
/// Over larger batches OpenBLAS's packing pays for itself: at W2's first layer over 1024 rows
/// its product was the faster. Decided by the layer's shape and the whole batch's rows, never by
/// a thread's part of them, so that a split does not change which kernels compute it.
inline bool small_products_fit(Index rows, Index in, Index out) {
  constexpr Index kFloats = 128 * 1024;
  return in > 0 && out > 0 && in * out <= kFloats && rows * in <= kFloats &&
         small_products_available();
}

/// Whether Z = X·W of such a layer runs as product_dwt over a row-major copy of W
/// (transpose_weights): each row of Z a sum of W's rows scaled by X's elements, sixteen columns
/// of Z a vector, which ran at 1.2-1.4× the dot products of product_xw at W2's first layer
/// (177-211 against 138-171 GFLOP/s, 64 to 1024 rows, one core) and needs no bound on the rows:
/// a block of them is read once per 64 of W's columns. The copy (12 µs for 784 × 128) pays for
/// itself from about 45 rows; from 128 on it is made (a training step of 64 rows keeps the dot
/// products, and its bits). Layers of fewer than 32 outputs keep the dot products (a vector of
/// sixteen would be mostly empty).
inline bool transposed_forward_fits(Index rows, Index in, Index out) {
  constexpr Index kFloats = 128 * 1024, kMinRows = 128, kMinOut = 32;
  return rows >= kMinRows && out >= kMinOut && in * out <= kFloats && small_products_available();
}

/// W (in × out, column-major) into wt, row-major: wt[k·out + j] = W(k, j). AVX-512F.
void transpose_weights(Index in, Index out, const float* w, float* wt);

/// Z(r, j) = Σ_k X(r, k)·W(k, j), r < rows, j < n, k < K. X row-major (row stride ldx), W
/// column-major (column stride ldw), Z row-major (row stride ldz).
void product_xw(Index rows, Index n, Index K, const float* x, Index ldx, const float* w, Index ldw,
                float* z, Index ldz);

/// G(k, j) = (or += with `accumulate`) Σ_r X(r, k)·D(r, j), k < K, j < n, r < rows. X and D
/// row-major (row strides ldx, ldd), G column-major (column stride ldg).
void product_xtd(Index rows, Index n, Index K, const float* x, Index ldx, const float* d, Index ldd,
                 float* g, Index ldg, bool accumulate);

/// E(r, k) = Σ_j D(r, j)·W(k, j), r < rows, k < m, j < N: ∂L/∂X = ∂L/∂Z·Wᵀ. D and E row-major
/// (row strides ldd, lde), W column-major (column stride ldw).
void product_dwt(Index rows, Index m, Index N, const float* d, Index ldd, const float* w, Index ldw,
                 float* e, Index lde);

}  // namespace chainrule::detail
