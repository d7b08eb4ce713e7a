//go:build amd64 && !purego

package nn

import "golang.org/x/sys/cpu"

//go:noescape
func adamAVX(n int, value, grad, m, v *float64, c *adamCoef)

var haveAdamAVX = cpu.X86.HasAVX

// adamUpdate applies the Adam update to each element of value (see
// adamScalar), four at a time where the CPU has AVX.
func adamUpdate(value, grad, m, v []float64, c *adamCoef) {
	n := len(grad)
	value, m, v = value[:n], m[:n], v[:n]
	if haveAdamAVX && n >= 4 {
		n4 := n &^ 3
		adamAVX(n4, &value[0], &grad[0], &m[0], &v[0], c)
		value, grad, m, v = value[n4:], grad[n4:], m[n4:], v[n4:]
	}
	adamScalar(value, grad, m, v, c)
}
