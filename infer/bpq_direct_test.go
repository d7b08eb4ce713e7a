package infer

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/q"
	"github.com/backpropq/backpropq/vi"
)

// TestBackpropQDirectCostsUnbiased checks mode QControlVariate on a
// network that inlines the direct costs (each enters the control variate
// exactly, at the relaxed values, and the critics fit the rest) against
// the exact gradient of the ELBO, by enumeration, of a two-layer SBN with
// 4 and 3 latent units, in every form, with untrained and partly trained
// critics, with a leave-one-out baseline, and with the critics left out
// (NoCritics). It logs the summed variance
// of the estimates of the guide's gradient beside the same form on a
// network without inlined costs.
func TestBackpropQDirectCostsUnbiased(t *testing.T) {
	obj := sbnSizedELBO(4, 3)
	// -short (the race detector's run) keeps the cases marked short.
	cases := []struct {
		leCase
		loo       int
		noCritics bool
		short     bool
	}{
		{leCase: leCase{name: "local-expectation/untrained", cfg: mlp8(1e-12), steps: 10}},
		{leCase: leCase{name: "local-expectation/partly-trained", cfg: mlp8(0.01), steps: 100}},
		{leCase: leCase{name: "local-expectation/partly-trained/loo", cfg: mlp8(0.01), steps: 100}, loo: 2, short: true},
		{leCase: leCase{name: "relaxed/untrained", cfg: mlp8(1e-12), steps: 10, form: formRelaxed}, short: true},
		{leCase: leCase{name: "relaxed/partly-trained", cfg: mlp8(0.01), steps: 100, form: formRelaxed}},
		{leCase: leCase{name: "enumerated/partly-trained", cfg: mlp8(0.01), steps: 100, form: formEnumerated}},
		{leCase: leCase{name: "relaxed/no-critics/loo", cfg: mlp8(0.01), steps: 100, form: formRelaxed}, loo: 2, noCritics: true},
	}
	for _, c := range cases {
		if testing.Short() && !c.short {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			store := initObjectiveStore(t, obj)
			exact := exactObjectiveGradient(t, obj, store, sbn43Support)
			variance := map[bool]float64{}
			// The comparison without inlined costs is for the log only.
			forms := []bool{true, false}
			if testing.Short() {
				forms = forms[:1]
			}
			for _, inline := range forms {
				est := NewQControlVariate(c.cfg, q.TD{})
				est.Cache = &q.Cache{Options: q.NetworkOptions{InlineCosts: inline}}
				est.LocalExpectation = c.form == formLocalExpectation
				est.Relaxed = c.form == formRelaxed
				est.LeaveOneOut = c.loo
				est.NoCritics = c.noCritics
				s := &SVI{
					Objective: obj, Estimators: Estimators{Default: est},
					Optimizer: nn.NewAdam(0.01), Params: initObjectiveStore(t, obj), Particles: 20, Seed: 3,
				}
				trainCritics(t, s, c.steps)
				a, _ := est.Coefficients("h1")
				if c.noCritics {
					require.Zero(t, a, "NoCritics leaves the critics out")
				} else {
					require.NotZero(t, a, "the control variate of h1 is in use")
				}
				reps := repetitions()
				mean, se := estimateGradient(t, s, reps)
				if inline {
					requireAgree(t, exact, mean, se)
				}
				variance[inline] = guideVariance(store, se, reps)
			}
			t.Logf("%s: summed variance of the guide gradient components (one step of 20 particles): direct costs %.4g, critics of the whole return %.4g",
				c.name, variance[true], variance[false])
		})
	}
}

// TestBackpropQDirectCostsBadInput checks that direct costs on a
// Categorical site, whose class indices a relaxed value cannot replace,
// are an error naming the site, and that the failed step changes nothing.
func TestBackpropQDirectCostsBadInput(t *testing.T) {
	est := NewQControlVariate(mlpCritics(1), q.TD{})
	est.Cache = &q.Cache{Options: q.NetworkOptions{InlineCosts: true}}
	requireFailedStep(t, vi.Program{Model: categoricalModel}, est, []string{`site "z"`, "direct costs", "class indices"})
}
