package infer

import (
	"errors"
	"fmt"

	"github.com/backpropq/backpropq/ad"
)

// RLOO is REINFORCE leave-one-out (Kool, van Hoof and Welling 2019): the
// score-function estimator with K independent samples per data point, each
// sample's baseline the mean learning signal of the other K-1. For
// sample k of a data point, with L_j the Rao-Blackwellized learning signal
// of sample j ([SiteContext].Signal), the site's term is
//
//	log p(z_k | parents) · stopgrad(L_k - 1/(K-1) Σ_{j≠k} L_j)
//
// The baseline is computed from samples drawn independently of z_k, so the
// estimate stays unbiased; it needs no parameters, no running state and no
// re-run, only the K samples, which the run draws: it is the strong
// independent-sample baseline of the ARM and DisARM papers, at K times
// the cost of one sample per data point.
//
// The K samples of a data point are K consecutive particles (the rows of
// the run outside every plate), batch-major, the layout of ppl.Tile and
// vi.IWAE: particles b*K, ..., b*K+K-1 are the K samples of data point b.
// A model that brings its data to the run's batch with ppl.Tile gets that
// layout when it runs with K particles per data point (Config.Batch K
// times the number of data points); a model whose particles are
// exchangeable draws for one data set (ppl.Expand, ppl.Data in plates)
// has it for any K that divides the particles. A site inside plates has
// one row per plate member in each particle, and the K samples of a member
// are its rows in the K particles. With [SVI] chunks, a group must not be
// split: let Particles count data points and the objective run with K
// particles for each (as vi.IWAE does), so that every chunk holds whole
// data points.
//
// The estimate is unbiased for any grouping of independent rows (a
// baseline from another data point's sample is still independent of z_k,
// only less correlated with L_k), but not when a row's learning signal
// depends on another row's draw: a site whose rows the objective ties
// together ([SiteContext].TiedRows: vi.IWAE with K >= 2, or a site inside
// a plate that reaches a cost outside it) is refused.
//
// The costs of the K samples are all summed into the loss, so the
// objective's value and gradient are K times those of one sample per data
// point; scale the objective by 1/K (vi.ELBO's Scale, say) to keep their
// size.
//
// RLOO is also a [Baseline], so the leave-one-out baseline can center the
// signal of another estimator that takes one (a [ScoreFunction], [PPO] or
// the local-cost mode of Backprop-Q, [QLocal]). It is a value type, safe for
// concurrent use.
type RLOO struct {
	// K is the number of samples per data point, at least 2.
	K int
}

// Unbiased returns true.
func (RLOO) Unbiased() bool { return true }

// Surrogate returns the leave-one-out score-function term. It fails when
// K < 2, when the site's rows are not a multiple of K, when the objective
// ties its rows together, and when the site has no log-probability (its
// value was substituted).
func (r RLOO) Surrogate(sc *SiteContext) (Term, error) {
	s := sc.Site
	if s.LogProb == nil {
		return Term{}, errors.New("RLOO: the site has no log-probability (its value was substituted)")
	}
	centered, err := r.leaveOneOut(sc, sc.Signal)
	if err != nil {
		return Term{}, fmt.Errorf("RLOO: %w", err)
	}
	return Term{Loss: rowMask(s, ad.Mul(s.LogProb, centered)), Signal: centered}, nil
}

// Center subtracts from each row of signal the mean signal of the other
// rows of its data point (see [RLOO]); it trains nothing and keeps no
// state. It fails like [RLOO.Surrogate].
func (r RLOO) Center(sc *SiteContext, signal *ad.Tensor) (centered, loss *ad.Tensor, commit func(), err error) {
	centered, err = r.leaveOneOut(sc, signal)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("RLOO: %w", err)
	}
	return centered, nil, nil, nil
}

// leaveOneOut returns signal, [B x 1], with each row's leave-one-out
// baseline subtracted, without a gradient path.
func (r RLOO) leaveOneOut(sc *SiteContext, signal *ad.Tensor) (*ad.Tensor, error) {
	if r.K < 2 {
		return nil, fmt.Errorf("need K >= 2 samples per data point, got K = %d", r.K)
	}
	if sc.TiedRows {
		return nil, errors.New("the objective ties its rows together (an importance-weighted bound), so a row's signal depends on the other rows' draws; use ScoreFunction")
	}
	rows, cols := signal.Dims()
	if cols != 1 {
		return nil, fmt.Errorf("the learning signal is [%dx%d], want one column", rows, cols)
	}
	// Inside plates a particle has one row per plate member, and the K
	// samples of a member are its rows in K consecutive particles.
	members := 1
	if sc.Site != nil && len(sc.Site.Plates) > 0 {
		members = sc.Site.Plates.Rows()
		if members < 1 || rows%(members*r.K) != 0 {
			return nil, fmt.Errorf("the site has %d rows, %d per particle inside plates %v: the particles are not a multiple of K = %d samples per data point", rows, members, sc.Site.Plates, r.K)
		}
	}
	if rows%r.K != 0 {
		return nil, fmt.Errorf("the site has %d rows, not a multiple of K = %d samples per data point", rows, r.K)
	}
	in := signal.Data()
	// A new tensor of the tape, written before any op reads it.
	res := signal.Tape().Zeros(rows, 1)
	out := res.Data()
	stride := members
	for first := 0; first < rows; first += r.K * members {
		for m := 0; m < members; m++ {
			for k := 0; k < r.K; k++ {
				// The others are summed directly rather than as the
				// group's total minus this row, which would cancel
				// digits when the signals are large and close.
				others := 0.0
				for j := 0; j < r.K; j++ {
					if j != k {
						others += in[first+j*stride+m]
					}
				}
				row := first + k*stride + m
				out[row] = in[row] - others/float64(r.K-1)
			}
		}
	}
	return res, nil
}
