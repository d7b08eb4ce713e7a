package nn

import (
	"fmt"
	"math"
)

// NormStepper is an [Optimizer] whose step also measures the gradients:
// StepNorm is Step (with the same errors, and nothing changed on an
// error), and returns the sum of the squares of every element of every
// gradient, taken in the pass that checks them for NaN and infinity, so
// that a training loop that reports the gradient norm makes no pass of
// its own. The sum adds the parameters' [SumSquares] in the order of
// params; it is +Inf when it overflows with finite elements.
type NormStepper interface {
	Optimizer
	StepNorm(params []*Param) (sumSquares float64, err error)
}

// SumSquares returns the sum of the squares of xs. It keeps four partial
// sums, over the elements at positions 0, 1, 2 and 3 modulo 4, which
// breaks the chain of dependent additions; the rounding differs from a
// left-to-right sum but depends on xs alone. The result is NaN or
// infinite exactly when an element is NaN or infinite or the sum
// overflows.
func SumSquares(xs []float64) float64 {
	var s0, s1, s2, s3 float64
	n4 := len(xs) &^ 3
	for i := 0; i < n4; i += 4 {
		v := xs[i : i+4 : i+4]
		s0 += v[0] * v[0]
		s1 += v[1] * v[1]
		s2 += v[2] * v[2]
		s3 += v[3] * v[3]
	}
	for i, v := range xs[n4:] {
		switch i {
		case 0:
			s0 += v * v
		case 1:
			s1 += v * v
		default:
			s2 += v * v
		}
	}
	return (s0 + s1) + (s2 + s3)
}

// gradSumSquares returns the sum of the squares of p's gradient, or an
// error locating its first NaN or infinite element. A contiguous gradient
// is summed in one piece, a strided one row by row.
func gradSumSquares(kind string, p *Param) (float64, error) {
	r, c := p.Grad.Dims()
	g := p.Grad.RawMatrix()
	var ss float64
	if g.Stride == c {
		ss = SumSquares(g.Data[:r*c])
	} else {
		for i := 0; i < r; i++ {
			ss += SumSquares(g.Data[i*g.Stride : i*g.Stride+c])
		}
	}
	if !math.IsNaN(ss) && !math.IsInf(ss, 0) {
		return ss, nil
	}
	for i := 0; i < r; i++ {
		for j, v := range g.Data[i*g.Stride : i*g.Stride+c] {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return 0, fmt.Errorf("nn: %s: parameter %q: gradient is %v at row %d, column %d", kind, p.Name, v, i, j)
			}
		}
	}
	return ss, nil // finite elements whose squares overflow
}
