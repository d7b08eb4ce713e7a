//go:build amd64 && !purego

package gemm

import "golang.org/x/sys/cpu"

// kern6x8 is the micro-kernel in kernel_amd64.s: it adds alpha·A·B to the
// 6x8 tile of c with row stride ldc (or stores it there when add is 0),
// where a holds a packed 6xk panel and b a kx8 panel with row stride ldb.
//
//go:noescape
func kern6x8(k int, a, b, c *float64, ldc int, alpha float64, add int, ldb int)

// kern6x16 is the micro-kernel in kernel512_amd64.s: kern6x8 on the
// tiles at c0 and c1 at once, from the same panel of a and the b panels
// at b0 and b1, with 8-wide registers; it agrees with kern6x8 bit for bit.
//
//go:noescape
func kern6x16(k int, a, b0, b1, c0, c1 *float64, ldc int, alpha float64, add int, ldb int)

// wide reports whether the product runs two tiles at a time with
// kern6x16, on CPUs with AVX-512 (whose state the OS saves).
var wide = cpu.X86.HasAVX512F

// Available reports whether this CPU runs the AVX2 and FMA micro-kernel,
// and so whether [Dgemm] may be called.
var Available = cpu.X86.HasAVX2 && cpu.X86.HasFMA
