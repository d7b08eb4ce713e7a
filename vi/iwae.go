package vi

import (
	"errors"
	"fmt"
	"math"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/trace"
)

// The addresses of the sites that [IWAE] adds to its trace.
const (
	// IWAEAddr is the address of the importance-weighted bound's cost.
	IWAEAddr = "iwae"
	// LogWeightsAddr is the address of the deterministic site holding the
	// log importance weights log w, [B x K] (see [LogWeights]).
	LogWeightsAddr = "iwae.logw"
)

// IWAE is the importance-weighted bound of Burda et al. (2016) with K
// particles per data point,
//
//	L_K = E[ log (1/K) Σ_k w_k ],  w_k = p(x, z_k) / q(z_k | x),  z_k ~ q,
//
// which lies between the ELBO (K = 1) and log p(x) and tightens as K
// grows. The K particles of the B data points are vectorized along
// dimension 0, batch-major: the run has K*B rows, and row b*K + k is
// particle k of data point b. A model and a guide serve both [ELBO] and
// IWAE unchanged when they bring their data to the run's batch with
// [ppl.Tile] (the identity when there is one row per data point).
//
// Run returns a trace holding the guide's sample (and intervened) sites
// and its deterministic sites (critic inputs from q.Input, say), then a deterministic site at [LogWeightsAddr] with log w, [B x K],
// and one cost site at [IWAEAddr]: every row of data point b holds
// -L_b/K, so that the rows of a data point sum to its negative bound and
// [Loss] is -Σ_b L_b. The cost depends on every particle of every latent,
// so it is reachable from each sample site. The per-row graph signal of a
// site is therefore not its score-function learning signal (the particles
// of a data point share one cost): score-function estimators use
// [VIMCOSignal], and pathwise estimators the gradient of the cost.
//
// log w sums the model's log-probabilities of latents and observations,
// minus the model's costs, minus the guide's log-probabilities and costs.
// Inside plates, the rows of a particle's members are summed into the
// particle's weight (weighed by N/n when the plate is subsampled): the
// particles are the rows outside every plate, and a local latent's
// learning signal is its particle's. IWAE does not support otherwise
// weighted sites: Run fails if a site has a Scale other than its plates'
// or a Mask.
type IWAE struct {
	// Model and Guide are as in [ELBO].
	Model, Guide ppl.Model
	// K is the number of particles per data point, >= 1.
	K int
	// Scale, when not 0, is the Scale of the objective's cost, and is
	// refused above 1, as in [ELBO], when a latent is outside every plate.
	// It does
	// not change the log weights, the bounds or the VIMCO signal. 0 means
	// 1.
	Scale float64
	// ModelHandlers and GuideHandlers are as in [ELBO].
	ModelHandlers, GuideHandlers []ppl.Handler
}

// Run runs the guide with K*B rows, B being env.Batch, the number of data
// points (1 when env.Batch is 0), then the model replayed on the guide's values as [ELBO.Run] does,
// and returns the objective's trace (see [IWAE]). It returns the errors of
// [ELBO.Run], and an error when K < 1, when the guide's batch is not K*B,
// or when a site is scaled or masked.
func (w IWAE) Run(env ppl.Config, handlers ...ppl.Handler) (*trace.Trace, error) {
	if w.K < 1 {
		return nil, fmt.Errorf("vi: IWAE: K must be >= 1, got %d", w.K)
	}
	b := max(env.Batch, 1)
	env.Batch = w.K * b
	p, err := runPair("IWAE", w.Model, w.Guide, env, handlers, handlersOf(w.ModelHandlers, w.GuideHandlers))
	if err != nil {
		return nil, err
	}
	if n := p.guide.Batch(); n != env.Batch {
		return nil, fmt.Errorf("vi: IWAE: the guide's batch is %d, want K*B = %d*%d", n, w.K, b)
	}
	for _, a := range []string{IWAEAddr, LogWeightsAddr} {
		if err := p.checkFree(a, "a site of the IWAE objective"); err != nil {
			return nil, fmt.Errorf("vi: IWAE: %w", err)
		}
	}
	var logw *ad.Tensor
	add := func(s *ppl.Site, t *ad.Tensor, sign float64) {
		// A particle's weight is the product over its plates' members.
		t = ppl.Move(ad.Scale(t, s.Scale*sign), s.Plates, nil)
		if logw == nil {
			logw = t
		} else {
			logw = ad.Add(logw, t)
		}
	}
	var sites []*ppl.Site
	for _, run := range []struct {
		tr   *trace.Trace
		sign float64
	}{{p.guide, -1}, {p.model, 1}} {
		for _, s := range run.tr.Sites() {
			if !s.Stochastic() && !s.IsCost() {
				continue
			}
			if s.Scale != s.Plates.Scale() || s.Mask != nil {
				return nil, fmt.Errorf("vi: IWAE: %w", &ppl.SiteError{Addr: s.Addr, Err: errors.New("scaled or masked sites are not supported (other than by their plates' subsample)")})
			}
			switch {
			case s.Kind == ppl.KindCost:
				add(s, s.Cost, -1)
			case s.Kind == ppl.KindObserve:
				add(s, s.LogProb, 1)
			default:
				lp, err := logProb(s)
				if err != nil {
					return nil, fmt.Errorf("vi: IWAE: %w", err)
				}
				add(s, lp, run.sign)
			}
		}
	}
	for _, s := range p.guide.Sites() {
		if s.Stochastic() || s.Intervened || s.Kind == ppl.KindDeterministic || s.Kind == ppl.KindPlate {
			sites = append(sites, s)
		}
	}
	for _, s := range p.model.Sites() {
		if s.Kind == ppl.KindPlate && p.guide.Site(s.Addr) == nil {
			sites = append(sites, s)
		}
	}
	n := env.Batch
	if logw == nil {
		return nil, errors.New("vi: IWAE: no site has a log-probability or a cost")
	}
	tp := logw.Tape()
	if r := logw.Rows(); r != n {
		if r != 1 {
			return nil, fmt.Errorf("vi: IWAE: log weights have %d rows, want %d", r, n)
		}
		logw = ad.Add(logw, tp.Zeros(n, 1))
	}
	logw = ad.Reshape(logw, b, w.K)
	bound := boundOf(logw)
	share := ad.Scale(bound, -1/float64(w.K))
	cost := ad.Reshape(ad.Add(tp.Zeros(b, w.K), share), n, 1)
	ws, cs := siteRecords.Get(tp), siteRecords.Get(tp)
	*ws = ppl.Site{Addr: LogWeightsAddr, Kind: ppl.KindDeterministic, ID: -1, Value: logw, Scale: 1, Parents: logw.Provenance()}
	*cs = ppl.Site{Addr: IWAEAddr, Kind: ppl.KindCost, ID: -1, Value: cost, Cost: cost, Scale: 1}
	sites = append(sites, ws, cs)
	if err := scaleCosts(sites, w.Scale, p.guide); err != nil {
		return nil, fmt.Errorf("vi: IWAE: %w", err)
	}
	tr, err := trace.Compose(sites...)
	if err != nil {
		return nil, fmt.Errorf("vi: IWAE: %w", err)
	}
	return tr, nil
}

// boundOf returns L_b = log (1/K) Σ_k w_bk for log weights [B x K], as
// [B x 1].
func boundOf(logw *ad.Tensor) *ad.Tensor {
	return ad.Add(ad.LogSumExp(logw), logw.Tape().Scalar(-math.Log(float64(logw.Cols()))))
}

// Bound reports that the loss of the objective is the negative of a lower
// bound on the log-likelihood (the optional interface infer.Bounder).
func (IWAE) Bound() bool { return true }

// LogWeights returns the log importance weights recorded in tr, a trace of
// [IWAE.Run], as [B x K]: row b holds the K particles of data point b. It
// returns an error when tr holds none.
func LogWeights(tr *trace.Trace) (*ad.Tensor, error) {
	s := tr.Site(LogWeightsAddr)
	if s == nil || s.Kind != ppl.KindDeterministic || s.Value == nil {
		return nil, fmt.Errorf("vi: the trace has no log weights at %q; it is not a trace of IWAE.Run", LogWeightsAddr)
	}
	return s.Value, nil
}

// logWeights returns the log weights of tr, checking that tr has w's K.
func (w IWAE) logWeights(tr *trace.Trace) (*ad.Tensor, error) {
	logw, err := LogWeights(tr)
	if err != nil {
		return nil, err
	}
	if logw.Cols() != w.K {
		return nil, fmt.Errorf("vi: IWAE: the trace has %d particles per data point, K is %d", logw.Cols(), w.K)
	}
	return logw, nil
}

// Bounds returns L_b, the importance-weighted bound of each data point of
// tr, a trace of [IWAE.Run] with the same K, as [B x 1] with gradient
// paths.
func (w IWAE) Bounds(tr *trace.Trace) (*ad.Tensor, error) {
	logw, err := w.logWeights(tr)
	if err != nil {
		return nil, err
	}
	return boundOf(logw), nil
}

// VIMCOSignal is the package function [VIMCOSignal] for a trace of this
// objective; it also checks that tr has K particles per data point.
func (w IWAE) VIMCOSignal(tr *trace.Trace) (*ad.Tensor, error) {
	if _, err := w.logWeights(tr); err != nil {
		return nil, err
	}
	return VIMCOSignal(tr)
}

// VIMCOSignal returns the leave-one-out learning signal of VIMCO (Mnih and
// Rezende 2016) for each particle of tr, a trace of [IWAE.Run] with K >= 2
// particles per data point, as a [K*B x 1] tensor in the trace's row order
// (batch-major), without gradient path or provenance. It needs nothing but
// the trace, so an estimator that sees only the trace can call it. The
// signal is in cost units, like the signal of a score-function estimator
// (lower is better): for particle k of data point b,
//
//	signal_k = L_{-k} - L,  L_{-k} = log (1/K) (Σ_{j≠k} w_j + ŵ_k),
//
// where L is the data point's bound and ŵ_k = exp(mean_{j≠k} log w_j)
// stands in for w_k (the geometric mean of the other weights). The
// gradient of -L is then Σ_k signal_k ∇log q(z_k) (the score-function
// part, whose baseline L_{-k} does not depend on z_k) plus the gradient of
// the IWAE cost with the particles held fixed (its pathwise part). It
// returns an error when K < 2 (there are no other particles) or tr holds
// no log weights.
func VIMCOSignal(tr *trace.Trace) (*ad.Tensor, error) {
	logw, err := LogWeights(tr)
	if err != nil {
		return nil, err
	}
	k := logw.Cols()
	if k < 2 {
		return nil, fmt.Errorf("vi: VIMCOSignal needs K >= 2 particles per data point, got %d", k)
	}
	lw := logw.Data()
	// New tensors of the tape, written before any op reads them.
	res := logw.Tape().Zeros(len(lw), 1)
	out := res.Data()
	logK := math.Log(float64(k))
	others := logw.Tape().Zeros(1, k).Data()
	for b := 0; b*k < len(lw); b++ {
		row := lw[b*k : (b+1)*k]
		bound := logSumExp(row) - logK
		for i := range row {
			copy(others, row)
			// The mean of the others' log weights stands in for log w_i;
			// summed directly, not as total minus row[i], so that a -Inf
			// weight gives -Inf rather than NaN.
			mean := 0.0
			for j, v := range row {
				if j != i {
					mean += v
				}
			}
			others[i] = mean / float64(k-1)
			out[b*k+i] = logSumExp(others) - logK - bound
		}
	}
	return res, nil
}

// logSumExp returns log Σ exp(x) without overflow; -Inf for all -Inf.
func logSumExp(x []float64) float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = max(m, v)
	}
	if math.IsInf(m, 0) {
		return m
	}
	s := 0.0
	for _, v := range x {
		s += math.Exp(v - m)
	}
	return m + math.Log(s)
}
