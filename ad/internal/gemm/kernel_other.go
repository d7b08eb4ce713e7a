//go:build !amd64 || purego

package gemm

// Available is false where the micro-kernel is not built (other
// architectures and the purego tag): [Dgemm] must not be called.
const Available = false

func kern6x8(k int, a, b, c *float64, ldc int, alpha float64, add int, ldb int) {
	panic("gemm: the micro-kernel is not built for this platform")
}

// wide is false where kern6x16 is not built.
var wide = false

func kern6x16(k int, a, b0, b1, c0, c1 *float64, ldc int, alpha float64, add int, ldb int) {
	panic("gemm: the micro-kernel is not built for this platform")
}
