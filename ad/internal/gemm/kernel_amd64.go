//go:build amd64 && !purego

package gemm

import "golang.org/x/sys/cpu"

// kern6x8 is the micro-kernel in kernel_amd64.s: it adds alpha·A·B to the
// 6x8 tile of c with row stride ldc (or stores it there when add is 0),
// where a holds a packed 6xk panel and b a kx8 panel with row stride ldb.
//
//go:noescape
func kern6x8(k int, a, b, c *float64, ldc int, alpha float64, add int, ldb int)

// Available reports whether this CPU runs the AVX2 and FMA micro-kernel,
// and so whether [Dgemm] may be called.
var Available = cpu.X86.HasAVX2 && cpu.X86.HasFMA
