//go:build amd64 && !purego

package nn

import "golang.org/x/sys/cpu"

//go:noescape
func adamAVX(n int, value, grad, m, v *float64, c *adamCoef)

//go:noescape
func adam512(n int, value, grad, m, v *float64, c *adamCoef)

var (
	haveAdamAVX = cpu.X86.HasAVX
	// haveAdam512 selects adam512 on CPUs with AVX-512.
	haveAdam512 = cpu.X86.HasAVX512F
)

// adamUpdate applies the Adam update to each element of value (see
// adamScalar), eight or four at a time where the CPU has AVX-512 or AVX.
func adamUpdate(value, grad, m, v []float64, c *adamCoef) {
	n := len(grad)
	value, m, v = value[:n], m[:n], v[:n]
	if haveAdam512 && n >= 8 {
		n8 := n &^ 7
		adam512(n8, &value[0], &grad[0], &m[0], &v[0], c)
		value, grad, m, v = value[n8:], grad[n8:], m[n8:], v[n8:]
		n -= n8
	}
	if haveAdamAVX && n >= 4 {
		n4 := n &^ 3
		adamAVX(n4, &value[0], &grad[0], &m[0], &v[0], c)
		value, grad, m, v = value[n4:], grad[n4:], m[n4:], v[n4:]
	}
	adamScalar(value, grad, m, v, c)
}
