//go:build !amd64 || purego

package nn

// adamUpdate applies the Adam update to each element of value (see
// adamScalar).
func adamUpdate(value, grad, m, v []float64, c *adamCoef) { adamScalar(value, grad, m, v, c) }
