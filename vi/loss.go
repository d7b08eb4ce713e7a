package vi

import (
	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/trace"
)

// Loss returns the loss of an objective's trace: the sum over its cost and
// observe sites of their costs with Scale and Mask applied
// ([ppl.Site.ScaledCost]) summed over rows, [1 x 1], with gradient paths.
// For [ELBO] and [IWAE] it is minus the bound summed over the rows outside
// every plate: over data points in a model whose rows are data points,
// but over particles in a model whose data are in a plate (or in columns),
// where each row estimates the whole data set's bound and the sum is P
// times the bound for P particles (divide by P to report the bound). It
// returns nil when tr has no costs.
func Loss(tr *trace.Trace) *ad.Tensor {
	c := RowCost(tr)
	if c == nil {
		return nil
	}
	return ad.Sum(c)
}

// RowCost returns, for each row of an objective's trace, the sum of its
// cost and observe sites' scaled and masked costs
// ([ppl.Site.ScaledCost]), [B x 1], with gradient paths; the rows of a
// cost inside plates are summed into their particle's row (ppl.Move). It
// returns nil when tr has no costs.
func RowCost(tr *trace.Trace) *ad.Tensor {
	var sum *ad.Tensor
	for _, s := range tr.Sites() {
		if !s.IsCost() {
			continue
		}
		c := s.ScaledCost()
		if c == nil {
			continue
		}
		c = ppl.Move(c, s.Plates, nil)
		if sum == nil {
			sum = c
		} else {
			sum = ad.Add(sum, c)
		}
	}
	return sum
}

// Bounded is an [Objective] whose loss is the negative of a lower bound on
// the log-likelihood, and which reports the bound of each data point of
// one of its traces ([ELBO.Bounds], [IWAE.Bounds]).
type Bounded interface {
	Objective
	Bounds(tr *trace.Trace) (*ad.Tensor, error)
}

var (
	_ Bounded = ELBO{}
	_ Bounded = IWAE{}
)
