package infer

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat"
)

// Summary describes the draws of one site, element by element: each matrix
// has the site's rows per draw and its columns, and element (i, j) is a
// statistic of element (i, j) over the draws.
type Summary struct {
	// Mean and SD are the sample mean and standard deviation (with the
	// unbiased variance) over the draws.
	Mean, SD *mat.Dense
	// Quantiles holds the requested quantiles, in the order asked: the
	// empirical quantile of the draws (stat.Empirical).
	Quantiles []*mat.Dense
}

// Summary returns the summary of the site at addr with the given quantiles,
// each in [0, 1]. It is an error, naming the address, when s has no such
// site, and when a quantile is outside [0, 1].
func (s Samples) Summary(addr string, quantiles ...float64) (Summary, error) {
	t, ok := s.Sites[addr]
	if !ok {
		return Summary{}, fmt.Errorf("infer: Samples: no site %q", addr)
	}
	for _, q := range quantiles {
		if !(q >= 0 && q <= 1) {
			return Summary{}, fmt.Errorf("infer: Samples: site %q: quantile %v outside [0, 1]", addr, q)
		}
	}
	rows, cols := t.Rows()/s.Draws, t.Cols()
	out := Summary{Mean: mat.NewDense(rows, cols, nil), SD: mat.NewDense(rows, cols, nil)}
	for range quantiles {
		out.Quantiles = append(out.Quantiles, mat.NewDense(rows, cols, nil))
	}
	data, xs := t.Data(), make([]float64, s.Draws)
	for i := range rows {
		for j := range cols {
			for d := range xs {
				xs[d] = data[(d*rows+i)*cols+j]
			}
			m, v := stat.MeanVariance(xs, nil)
			if s.Draws < 2 {
				v = math.NaN()
			}
			out.Mean.Set(i, j, m)
			out.SD.Set(i, j, math.Sqrt(v))
			if len(quantiles) > 0 {
				slices.Sort(xs)
				for k, q := range quantiles {
					out.Quantiles[k].Set(i, j, stat.Quantile(q, stat.Empirical, xs, nil))
				}
			}
		}
	}
	return out, nil
}
