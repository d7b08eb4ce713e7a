package infer

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl/dist"
)

// PolicyFunc returns the distribution of a policy (one row per row of the
// batch of actions) whose parameters are the given tensors of tp, in the
// order of the parameters passed to [TRPO.Step]. It must compute the
// distribution from those tensors only, so that gradients reach them.
type PolicyFunc func(tp *ad.Tape, params []*ad.Tensor) (dist.Distribution, error)

// TRPO is a trust-region policy step (Schulman et al. 2015; paper appendix
// 4.5, eq. 16) on a site's distribution: given a batch of actions a_i
// drawn from the current policy p_old and their costs Q_i (a
// Q-function's values or advantages), it minimizes the importance-weighted
// surrogate
//
//	L(θ) = mean_i [ p_θ(a_i) / p_old(a_i) · Q_i ]
//
// subject to mean_i KL(p_θ ‖ p_old) ≤ MaxKL, as TRPO does: the direction
// s solves F s = -∇L by conjugate gradients, where F is the Fisher
// information (the Hessian of the KL at θ_old), the step is scaled so that
// the quadratic model of the KL equals MaxKL, and a backtracking line
// search accepts the first step that lowers L and keeps the exact KL
// within the bound. Package ad has no second derivatives, so each
// Fisher-vector product is a central finite difference of the KL's
// gradient: F v ≈ (∇KL(θ + hv) - ∇KL(θ - hv)) / 2h, plus Damping·v.
//
// The zero value uses MaxKL 0.01, 10 conjugate-gradient iterations, damping
// 1e-3, and a line search of 10 backtracks that shrink the step by 0.8.
type TRPO struct {
	MaxKL      float64
	CGIters    int
	Damping    float64
	Backtracks int
	Shrink     float64
}

// TRPOResult describes a [TRPO.Step].
type TRPOResult struct {
	// Accepted reports that a step was taken; when false the parameters
	// are unchanged.
	Accepted bool
	// Before and After are the surrogate L at the old and new parameters.
	Before, After float64
	// KL is mean_i KL(p_new ‖ p_old) of the step taken.
	KL float64
	// Fraction is the fraction of the full step taken (1, Shrink,
	// Shrink², ...).
	Fraction float64
	// FullKL is the exact KL of the full step, whose quadratic model is
	// MaxKL; the two differ by the KL's third-order terms.
	FullKL float64
}

// trpoSettings are a [TRPO]'s settings with their defaults applied.
type trpoSettings struct {
	maxKL      float64
	iters      int
	damping    float64
	backtracks int
	shrink     float64
}

// settings applies the defaults to t and validates the result.
func (t TRPO) settings() (trpoSettings, error) {
	maxKL, iters, damping, backtracks, shrink := t.MaxKL, t.CGIters, t.Damping, t.Backtracks, t.Shrink
	if maxKL == 0 {
		maxKL = 0.01
	}
	if iters == 0 {
		iters = 10
	}
	if damping == 0 {
		damping = 1e-3
	}
	if backtracks == 0 {
		backtracks = 10
	}
	if shrink == 0 {
		shrink = 0.8
	}
	if !(maxKL > 0) || math.IsInf(maxKL, 0) || iters < 0 || damping < 0 || backtracks < 0 || !(shrink > 0 && shrink < 1) {
		return trpoSettings{}, fmt.Errorf("infer: TRPO: invalid settings %+v", t)
	}
	return trpoSettings{maxKL: maxKL, iters: iters, damping: damping, backtracks: backtracks, shrink: shrink}, nil
}

// Step takes one trust-region step on params, whose values it changes in
// place if the line search succeeds. actions holds one action per row, in
// the encoding of the policy's distribution, and costs one cost per row.
// It returns an error, changing nothing, for an invalid setting, a
// mismatch of rows, a policy error or a non-finite surrogate or gradient.
func (t TRPO) Step(params []*nn.Param, policy PolicyFunc, actions *mat.Dense, costs []float64) (TRPOResult, error) {
	set, err := t.settings()
	if err != nil {
		return TRPOResult{}, err
	}
	rows, _ := actions.Dims()
	if len(costs) != rows {
		return TRPOResult{}, fmt.Errorf("infer: TRPO: %d actions but %d costs", rows, len(costs))
	}
	pb, err := newTRPOStep(params, policy, actions, costs, set.damping)
	if err != nil {
		return TRPOResult{}, err
	}
	g, before, err := pb.gradAt(pb.theta0, false)
	if err != nil {
		return TRPOResult{}, err
	}
	if !finiteSlice(g) || math.IsNaN(before) || math.IsInf(before, 0) {
		return TRPOResult{}, errors.New("infer: TRPO: the surrogate or its gradient is not finite")
	}
	res := TRPOResult{Before: before, After: before}
	if floats.Norm(g, 2) == 0 {
		return res, nil
	}
	s, err := pb.conjugateGradient(g, set.iters)
	if err != nil {
		return TRPOResult{}, err
	}
	fs, err := pb.fisher(s)
	if err != nil {
		return TRPOResult{}, err
	}
	sFs := floats.Dot(s, fs)
	if !(sFs > 0) || !finiteSlice(s) {
		return TRPOResult{}, errors.New("infer: TRPO: the conjugate-gradient direction has no positive curvature")
	}
	full := math.Sqrt(2 * set.maxKL / sFs)
	return pb.lineSearch(res, s, full, set)
}

// trpoStep holds the surrogate and the KL of one [TRPO.Step], as
// functions of the flattened parameters theta, on one tape.
type trpoStep struct {
	params  []*nn.Param
	policy  PolicyFunc
	tp      *ad.Tape
	theta0  []float64
	oldDist dist.Distribution
	// act, oldLogp and q are the actions, their log-probabilities under
	// the old policy and their costs.
	act, oldLogp, q *ad.Tensor
	damping         float64
}

// newTRPOStep evaluates the old policy at the current parameters.
func newTRPOStep(params []*nn.Param, policy PolicyFunc, actions *mat.Dense, costs []float64, damping float64) (*trpoStep, error) {
	rows, _ := actions.Dims()
	pb := &trpoStep{params: params, policy: policy, damping: damping}
	pb.theta0 = flattenParams(params)
	pb.tp = ad.NewTape()
	_, oldDist, err := pb.eval(pb.theta0)
	if err != nil {
		return nil, err
	}
	pb.oldDist = oldDist
	pb.act = pb.tp.Const(actions)
	pb.oldLogp = ad.StopGradient(oldDist.LogProb(pb.act))
	pb.q = pb.tp.FromData(rows, 1, costs)
	return pb, nil
}

// bind returns the parameters at theta as constants of the tape.
func (pb *trpoStep) bind(theta []float64) []*ad.Tensor {
	ts := make([]*ad.Tensor, len(pb.params))
	off := 0
	for i, p := range pb.params {
		r, c := p.Value.Dims()
		ts[i] = pb.tp.FromData(r, c, theta[off:off+r*c])
		off += r * c
	}
	return ts
}

// eval returns the parameters at theta and the policy they define.
func (pb *trpoStep) eval(theta []float64) (ts []*ad.Tensor, d dist.Distribution, err error) {
	ts = pb.bind(theta)
	d, err = pb.policy(pb.tp, ts)
	if err != nil {
		return nil, nil, fmt.Errorf("infer: TRPO: policy: %w", err)
	}
	return ts, d, nil
}

// surrogate returns L for the policy d.
func (pb *trpoStep) surrogate(d dist.Distribution) *ad.Tensor {
	return ad.Mean(ad.Mul(ad.Exp(ad.Sub(d.LogProb(pb.act), pb.oldLogp)), pb.q))
}

// klTo returns mean_i KL(d ‖ p_old).
func (pb *trpoStep) klTo(d dist.Distribution) (*ad.Tensor, error) {
	kl, err := dist.KL(d, pb.oldDist)
	if err != nil {
		return nil, fmt.Errorf("infer: TRPO: %w", err)
	}
	return ad.Mean(kl), nil
}

// gradAt returns the gradient of the surrogate or the KL at theta, and
// its value.
func (pb *trpoStep) gradAt(theta []float64, ofKL bool) ([]float64, float64, error) {
	ts, d, err := pb.eval(theta)
	if err != nil {
		return nil, 0, err
	}
	var loss *ad.Tensor
	if ofKL {
		if loss, err = pb.klTo(d); err != nil {
			return nil, 0, err
		}
	} else {
		loss = pb.surrogate(d)
	}
	gs := pb.tp.Gradients(loss, ts...)
	out := make([]float64, 0, len(theta))
	for _, g := range gs {
		out = append(out, g.RawMatrix().Data...)
	}
	return out, loss.Item(), nil
}

// fisher returns the damped Fisher-vector product F v, by a central
// finite difference of the KL's gradient around theta0.
func (pb *trpoStep) fisher(v []float64) ([]float64, error) {
	norm := floats.Norm(v, 2)
	if norm == 0 {
		return make([]float64, len(v)), nil
	}
	h := 1e-4 / norm
	plus := append([]float64(nil), pb.theta0...)
	minus := append([]float64(nil), pb.theta0...)
	floats.AddScaled(plus, h, v)
	floats.AddScaled(minus, -h, v)
	gp, _, err := pb.gradAt(plus, true)
	if err != nil {
		return nil, err
	}
	gm, _, err := pb.gradAt(minus, true)
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(v))
	for i := range out {
		out[i] = (gp[i]-gm[i])/(2*h) + pb.damping*v[i]
	}
	return out, nil
}

// conjugateGradient solves F s = -g by at most iters conjugate-gradient
// iterations.
func (pb *trpoStep) conjugateGradient(g []float64, iters int) ([]float64, error) {
	s := make([]float64, len(g))
	r := make([]float64, len(g))
	floats.ScaleTo(r, -1, g)
	p := append([]float64(nil), r...)
	rr := floats.Dot(r, r)
	for k := 0; k < iters && rr > 1e-20; k++ {
		fp, err := pb.fisher(p)
		if err != nil {
			return nil, err
		}
		alpha := rr / floats.Dot(p, fp)
		floats.AddScaled(s, alpha, p)
		floats.AddScaled(r, -alpha, fp)
		next := floats.Dot(r, r)
		floats.AddScaledTo(p, r, next/rr, p)
		rr = next
	}
	return s, nil
}

// lineSearch tries the steps full·s, shrunk by set.shrink up to
// set.backtracks times, and takes the first that lowers the surrogate
// below res.Before and keeps the KL within set.maxKL, writing it into
// the parameters.
func (pb *trpoStep) lineSearch(res TRPOResult, s []float64, full float64, set trpoSettings) (TRPOResult, error) {
	frac := 1.0
	for k := 0; k <= set.backtracks; k++ {
		theta := append([]float64(nil), pb.theta0...)
		floats.AddScaled(theta, full*frac, s)
		_, d, err := pb.eval(theta)
		if err != nil {
			return TRPOResult{}, err
		}
		kl, err := pb.klTo(d)
		if err != nil {
			return TRPOResult{}, err
		}
		after := pb.surrogate(d).Item()
		if k == 0 {
			res.FullKL = kl.Item()
		}
		if kl.Item() <= set.maxKL && after < res.Before {
			unflattenParams(pb.params, theta)
			res.Accepted, res.After, res.KL, res.Fraction = true, after, kl.Item(), frac
			return res, nil
		}
		frac *= set.shrink
	}
	return res, nil
}

// flattenParams concatenates the values of params.
func flattenParams(params []*nn.Param) []float64 {
	var out []float64
	for _, p := range params {
		r, c := p.Value.Dims()
		for i := 0; i < r; i++ {
			for j := 0; j < c; j++ {
				out = append(out, p.Value.At(i, j))
			}
		}
	}
	return out
}

// unflattenParams writes theta into the values of params.
func unflattenParams(params []*nn.Param, theta []float64) {
	off := 0
	for _, p := range params {
		r, c := p.Value.Dims()
		for i := 0; i < r; i++ {
			for j := 0; j < c; j++ {
				p.Value.Set(i, j, theta[off])
				off++
			}
		}
	}
}

// finiteSlice reports whether every element of v is finite.
func finiteSlice(v []float64) bool {
	for _, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}
