package infer

import (
	"math"

	"github.com/backpropq/backpropq/vi"
)

// Metrics describes one step.
type Metrics struct {
	// Step is the step's index, from 0.
	Step int64
	// Rows is the number of rows (particles or data points) of the step.
	Rows int
	// Loss is the sum over rows of the scaled costs: a Monte Carlo
	// estimate of the objective times Rows.
	Loss float64
	// ELBO is -Loss when the objective is a [vi.Bounded] (its loss is the
	// negative of a bound on the log-likelihood), NaN otherwise. Like Loss
	// it sums the rows: for a model whose rows are data points it is the
	// bound of the step's data; for a model whose data sit in a plate, the
	// rows are particles and ELBO is Rows times one estimate of the bound,
	// so divide by Rows to read the bound itself.
	ELBO float64
	// GradNorm is the joint L2 norm of all gradients, before clipping.
	GradNorm float64
	// Sites holds, for each site whose estimator reported a learning
	// signal, its mean and variance over the step's rows, in the order of
	// the sites.
	Sites []SiteMetrics
}

// SiteMetrics is the learning signal of one site in one step.
type SiteMetrics struct {
	// Addr is the site's address.
	Addr string
	// SignalMean and SignalVar are the mean and the unbiased variance of
	// the learning signal (Term.Signal) over the step's rows.
	SignalMean float64
	SignalVar  float64
	// TDError, when HasTDError is set (a site whose estimator learns
	// critics, [Critics]), is the mean squared TD (lambda-return) error
	// of the site's critics before this step's update, averaged over the
	// site's Q-nodes and over the step's rows.
	TDError    float64
	HasTDError bool
	// ReturnVar, when HasReturnVar is set ([SVI].ReturnVariance, and an
	// estimator that records it, [Critics]), is the unbiased variance
	// over the step's rows of the plain REINFORCE learning signal: the
	// Rao-Blackwellized return R with no baseline or critic. SignalVar /
	// ReturnVar is then the variance reduction of the site's signal.
	ReturnVar    float64
	HasReturnVar bool
}

// metrics writes the summary of a successful step into m, reusing the
// memory of m.Sites.
func (s *SVI) metrics(results []chunkResult, norm float64, m *Metrics) {
	sites := m.Sites[:0]
	clear(m.Sites)
	*m = Metrics{Step: s.step, GradNorm: norm, ELBO: math.NaN()}
	acc := &s.acc
	acc.reset()
	for _, r := range results {
		m.Loss += r.sur.Cost
		rows := r.sur.Trace.Batch()
		m.Rows += rows
		acc.addSignals(r.sur)
		acc.addDiagnostics(r.sur, rows)
	}
	if _, ok := s.objective().(vi.Bounded); ok {
		m.ELBO = -m.Loss
	}
	for _, a := range acc.order {
		sites = append(sites, acc.site(a).metrics(a, s.ReturnVariance))
	}
	m.Sites = sites
}

// stepAcc accumulates the sites' metrics over the chunks of a step.
type stepAcc struct {
	// order lists the sites with a signal, in the order first seen;
	// accs holds the sums of each site, at its index.
	order []string
	index map[string]int
	accs  []siteAcc
}

// reset empties a, keeping its memory.
func (a *stepAcc) reset() {
	clear(a.order)
	a.order, a.accs = a.order[:0], a.accs[:0]
	if a.index == nil {
		a.index = make(map[string]int)
	}
	clear(a.index)
}

// siteAcc holds the sums of one site's metrics.
type siteAcc struct {
	n, sum, sum2 float64
	// td sums the chunks' TD errors weighted by their rows (tdRows);
	// ret sums the returns.
	td, tdRows float64
	ret        struct{ n, sum, sum2 float64 }
	// listed marks a site with a signal, which the metrics list.
	listed bool
}

// site returns the sums of the site at addr, creating them if needed; the
// pointer is valid until the next call.
func (a *stepAcc) site(addr string) *siteAcc {
	i, ok := a.index[addr]
	if !ok {
		i = len(a.accs)
		a.accs = append(a.accs, siteAcc{})
		a.index[addr] = i
	}
	return &a.accs[i]
}

// addSignals adds the learning signals of one chunk's surrogate.
func (a *stepAcc) addSignals(sur *Surrogate) {
	for _, t := range sur.terms {
		if t.term.Signal == nil {
			continue
		}
		st := a.site(t.addr)
		if !st.listed {
			st.listed = true
			a.order = append(a.order, t.addr)
		}
		for _, v := range t.term.Signal.Data() {
			st.n++
			st.sum += v
			st.sum2 += v * v
		}
	}
}

// addDiagnostics adds the TD errors and returns of one chunk's surrogate,
// whose trace has the given rows.
func (a *stepAcc) addDiagnostics(sur *Surrogate, rows int) {
	for _, d := range sur.Diagnostics() {
		st := a.site(d.Addr)
		if d.HasTDError {
			st.td += d.TDError * float64(rows)
			st.tdRows += float64(rows)
		}
		// The sums of one trace are added whole, as the rows of one
		// chunk.
		var n, sum, sum2 float64
		for _, v := range d.Return {
			n++
			sum += v
			sum2 += v * v
		}
		st.ret.n += n
		st.ret.sum += sum
		st.ret.sum2 += sum2
	}
}

// metrics returns the metrics of the site at addr; the return variance
// only when returnVar is set.
func (st *siteAcc) metrics(addr string, returnVar bool) SiteMetrics {
	mean := st.sum / st.n
	variance := 0.0
	if st.n > 1 {
		variance = max(st.sum2/st.n-mean*mean, 0) * st.n / (st.n - 1)
	}
	sm := SiteMetrics{Addr: addr, SignalMean: mean, SignalVar: variance}
	if st.tdRows > 0 {
		sm.TDError, sm.HasTDError = st.td/st.tdRows, true
	}
	if returnVar && st.ret.n > 0 {
		rm := st.ret.sum / st.ret.n
		if st.ret.n > 1 {
			sm.ReturnVar = max(st.ret.sum2/st.ret.n-rm*rm, 0) * st.ret.n / (st.ret.n - 1)
		}
		sm.HasReturnVar = true
	}
	return sm
}

// objective returns the objective for the vi.Bounded check.
func (s *SVI) objective() vi.Objective {
	if s.Objective != nil {
		return s.Objective
	}
	from, to := s.chunkRows(0)
	return s.Chunk(from, to)
}
