// Package vmath computes costly elementwise functions over whole buffers
// for package ad: softplus and sigmoid together, four values at a time in
// AVX2 and FMA assembly where the CPU has them (eight at a time with
// AVX-512, by the same operations in the same order, so with the same
// bits), with math's functions elsewhere; and tanh from the same kernel.
//
// The vector path is a function of each value alone (the last few values
// of a buffer go through the same code, padded), so results do not depend
// on how a buffer is cut. They differ from math's in the last bits; the
// bounds are in the documentation of [SoftplusSigmoid].
package vmath

import "math"

// SoftplusSigmoid sets sp[i] = softplus(w[i]) = log(1 + exp(w[i])) and
// sig[i] = sigmoid(w[i]) = 1/(1 + exp(-w[i])) for every element of w; sp
// and sig must be at least as long as w and must not overlap it or each
// other. On the vector path softplus is within 3 ulps of the exact value
// and sigmoid within 3 ulps, against 2 ulps for the composition of math's
// functions (both checked against higher-precision references in the
// tests); ±Inf and NaN behave as in math.
func SoftplusSigmoid(w, sp, sig []float64) {
	sp, sig = sp[:len(w)], sig[:len(w)]
	if !vectorized {
		for i, v := range w {
			sp[i], sig[i] = Scalar(v)
		}
		return
	}
	softplusSigmoidVec(w, sp, sig)
}

// tanhSmall is the |x| below which Tanh is math.Tanh's, a rational
// function without exponential; from it on, 1 - 2·sigmoid(-2|x|) loses
// no digits to cancellation (the sigmoid is below 0.23).
const tanhSmall = 0.625

// Tanh sets y[i] = tanh(x[i]) for every element of x; y must be at least
// as long as x, and may be x. Where |x| < 0.625 the value is math.Tanh's;
// from 0.625 on, on the vector path, it is 1 - 2·sigmoid(-2|x|) with x's
// sign, within 4 ulps of the exact value against 2 for math.Tanh (checked
// against higher-precision references in the tests). ±Inf give ±1, NaN
// gives NaN.
func Tanh(x, y []float64) {
	y = y[:len(x)]
	if !vectorized {
		for i, v := range x {
			y[i] = math.Tanh(v)
		}
		return
	}
	var w, sp, sig [256]float64
	for lo := 0; lo < len(x); lo += len(w) {
		xs := x[lo:min(lo+len(w), len(x))]
		n := len(xs)
		for j, v := range xs {
			w[j] = -2 * math.Abs(v)
		}
		softplusSigmoidVec(w[:n], sp[:n], sig[:n])
		for j, v := range xs {
			if math.Abs(v) < tanhSmall {
				y[lo+j] = math.Tanh(v)
			} else {
				y[lo+j] = math.Copysign(1-2*sig[j], v)
			}
		}
	}
}

// Scalar returns softplus(v) and sigmoid(v) from math's functions,
// sharing e = exp(-|v|): softplus(v) = max(v, 0) + log1p(e), and
// sigmoid(v) = 1/(1+e) for v >= 0, e/(1+e) below.
func Scalar(v float64) (softplus, sigmoid float64) {
	e := math.Exp(-math.Abs(v))
	if v < 0 {
		return math.Log1p(e), e / (1 + e)
	}
	return v + math.Log1p(e), 1 / (1 + e)
}

// vectorMax is the largest |w| the vector kernel handles: beyond it exp's
// scaling would leave the normal range, and Scalar takes over.
const vectorMax = 708
