package nn

import "math"

// adamCoef holds the coefficients of one Adam update, laid out for the
// assembly kernel: b1, 1-b1, b2, 1-b2, the bias-corrected learning rate
// and second-moment scale, and eps.
type adamCoef struct {
	b1, c1, b2, c2, lr, scale, eps float64
}

// adamScalar applies the Adam update element by element:
//
//	m ← b1·m + (1-b1)·g,  v ← b2·v + (1-b2)·g·g,
//	value ← value - lr·m / (sqrt(v)·scale + eps),
//
// each product and sum rounded on its own (the conversions forbid fused
// multiply-adds), which is also what the vector kernel does, so the two
// agree bit for bit.
func adamScalar(value, grad, m, v []float64, c *adamCoef) {
	m, v, value = m[:len(grad)], v[:len(grad)], value[:len(grad)]
	for j, g := range grad {
		mj := float64(c.b1*m[j]) + float64(c.c1*g)
		vj := float64(c.b2*v[j]) + float64(float64(c.c2*g)*g)
		m[j], v[j] = mj, vj
		den := float64(math.Sqrt(vj)*c.scale) + c.eps
		value[j] -= float64(c.lr*mj) / den
	}
}

// allFinite reports whether x holds no NaN or infinity: x·0 is 0 for
// finite x and NaN otherwise, and four running sums keep the loop short.
func allFinite(x []float64) bool {
	var s0, s1, s2, s3 float64
	for len(x) >= 4 {
		s0 += x[0] * 0
		s1 += x[1] * 0
		s2 += x[2] * 0
		s3 += x[3] * 0
		x = x[4:]
	}
	for _, v := range x {
		s0 += v * 0
	}
	return s0+s1+s2+s3 == 0
}
