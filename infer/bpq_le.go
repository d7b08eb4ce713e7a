package infer

import (
	"fmt"

	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/q"
)

// meaner is a distribution with a mean: for a Bernoulli site, the
// probability of a 1 in each column.
type meaner interface {
	Mean() *ad.Tensor
}

// checkLocalExpectation returns an error naming the site when mode
// QControlVariate cannot use the local-expectation form for it: the form
// needs a factorized Bernoulli site, and excludes the relaxed one.
func (e *QControlVariate) checkLocalExpectation(s *ppl.Site) error {
	if !e.LocalExpectation {
		return nil
	}
	if e.Relaxed {
		return fmt.Errorf("BackpropQ: control variate: site %q: Relaxed and LocalExpectation choose different forms; set one", s.Addr)
	}
	f, ok := s.Dist.(dist.Finite)
	_, hasMean := s.Dist.(meaner)
	if !ok || f.Encoding() != dist.Binary || !hasMean {
		return fmt.Errorf("BackpropQ: control variate: site %q: the local-expectation form needs a Bernoulli site, got %T", s.Addr, s.Dist)
	}
	return nil
}

// localExpectation returns, per row of the site,
//
//	Σ_i p_i · stopgrad(Q_X(b with unit i set to 1) - Q_X(b with unit i set to 0))
//
// where p_i is the probability of a 1 in column i and b the site's value
// at the row: for a factorized Bernoulli site, the gradient of its
// expectation is an unbiased estimate of ∇ E[Q_X(b)] (the local
// expectation), exact in each unit and sampled in the others. It is nil
// when the critics do not read the site's value.
func (c *Critics) localExpectation(sc *SiteContext, ev *qEval) (*ad.Tensor, error) {
	s := sc.Site
	nodes, kind, width := c.siteColumns(s.Addr, ev)
	if kind == 0 {
		return nil, nil
	}
	if kind != q.Binary || width != s.Value.Cols() {
		return nil, fmt.Errorf("BackpropQ: control variate: site %q: the critics read it as %d columns of kind %v, not its %d binary columns", s.Addr, width, kind, s.Value.Cols())
	}
	rows := s.LogProb.Rows()
	c.mu.Lock()
	diffs := predictFlips(nodes, width, rows)
	c.mu.Unlock()
	p := s.Dist.(meaner).Mean()
	return ad.RowSum(ad.Mul(p, s.LogProb.Tape().FromData(rows, width, diffs))), nil
}

// predictFlips returns, row-major as [rows x width], the sum over nodes of
// the critics' values with each of the site's columns set to 1 less their
// values with it set to 0. A NetCritic's Predict uses its own tape: the
// caller holds the critics' lock.
func predictFlips(nodes []nodeCols, width, rows int) []float64 {
	diffs := make([]float64, rows*width)
	dst := make([][]float64, width)
	for j := range dst {
		dst[j] = make([]float64, rows)
	}
	hi, lo := make([]float64, rows), make([]float64, rows)
	for _, nd := range nodes {
		if !nd.found {
			continue // the critic does not read the site: no difference
		}
		if fp, ok := nd.critic.(q.FlipPredictor); ok {
			fp.PredictFlips(nd.x, nd.from, dst)
		} else {
			nd.x = mat.DenseCopyOf(nd.x)
			for j := range dst {
				col := nd.from + j
				saved := setColumn(nd, col, 1, nil)
				nd.critic.Predict(nd.x, hi)
				setColumn(nd, col, 0, nil)
				nd.critic.Predict(nd.x, lo)
				setColumn(nd, col, 0, saved)
				for i := range hi {
					dst[j][i] = hi[i] - lo[i]
				}
			}
		}
		for j := range dst {
			for i, v := range dst[j] {
				diffs[i*width+j] += v
			}
		}
	}
	return diffs
}

// setColumn sets column col of the node's input copy to v at every row, or
// restores it from saved when saved is not nil; it returns the column's
// previous values.
func setColumn(nd nodeCols, col int, v float64, saved []float64) []float64 {
	rows, _ := nd.x.Dims()
	old := make([]float64, rows)
	for i := range old {
		old[i] = nd.x.At(i, col)
		if saved != nil {
			v = saved[i]
		}
		nd.x.Set(i, col, v)
	}
	return old
}
