// Package gemm is the matrix product behind package ad on amd64 CPUs with
// AVX2 and FMA: c = alpha·op(a)·op(b) + beta·c on row-major float64
// buffers, op being the identity or the transpose.
//
// It follows BLIS and Rust's matrixmultiply: blocks of op(a) and op(b) are
// packed into contiguous micro-panels sized for the L1 and L2 caches, so a
// transposed operand costs only a different packing, and a 6x8 register
// micro-kernel in assembly (twelve 4-wide accumulators, fused
// multiply-adds) computes each tile of c; on CPUs with AVX-512 a second
// kernel computes two adjacent tiles at once with 8-wide registers, by
// the same operations in the same order. A product large enough is cut
// into blocks of c computed on several cores at once.
//
// The result does not depend on how the product is cut or on the number
// of cores: every element of c is the sum of its products in the same
// order (k in blocks of at most 256, each block summed from zero in
// order of k with fused multiply-adds, then alpha·sum added to c, or
// stored for the first block when beta is 0), so a
// seed reproduces a run bit for bit on any machine with either kernel. It
// differs from gonum's product in the last bits, by the order of the sums.
package gemm
