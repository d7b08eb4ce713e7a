package infer

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/q"
	"github.com/backpropq/backpropq/vi"
)

// TestBackpropQLeaveOneOutUnbiased checks mode QControlVariate with a
// leave-one-out baseline over K = 2 samples per data point, in its
// local-expectation and relaxed forms, against the exact gradient of the
// ELBO, by enumeration, of a two-layer SBN with 4 and 3 latent units, with
// untrained and partly trained critics. It logs the summed variance of the
// estimates of the guide's gradient beside the same form without the
// baseline.
func TestBackpropQLeaveOneOutUnbiased(t *testing.T) {
	obj := sbnSizedELBO(4, 3)
	for i, c := range []leCase{
		{name: "local-expectation/partly-trained", cfg: mlp8(0.01), steps: 100},
		{name: "relaxed/untrained", cfg: mlp8(1e-12), steps: 10, form: formRelaxed},
		{name: "local-expectation/untrained", cfg: mlp8(1e-12), steps: 10},
		{name: "relaxed/partly-trained", cfg: mlp8(0.01), steps: 100, form: formRelaxed},
	} {
		if testing.Short() && i >= 2 {
			continue // -short (the race detector's run) keeps the first two
		}
		t.Run(c.name, func(t *testing.T) {
			store := initObjectiveStore(t, obj)
			exact := exactObjectiveGradient(t, obj, store, sbn43Support)
			variance := map[int]float64{}
			// The comparison with the fitted b is for the log only.
			ks := []int{2, 0}
			if testing.Short() {
				ks = ks[:1]
			}
			for _, k := range ks {
				est := NewQControlVariate(c.cfg, q.TD{})
				est.LocalExpectation = c.form == formLocalExpectation
				est.Relaxed = c.form == formRelaxed
				est.LeaveOneOut = k
				s := &SVI{
					Objective: obj, Estimators: Estimators{Default: est},
					Optimizer: nn.NewAdam(0.01), Params: initObjectiveStore(t, obj), Particles: 20, Seed: 3,
				}
				trainCritics(t, s, c.steps)
				for _, site := range []string{"h1", "h2"} {
					a, b := est.Coefficients(site)
					require.NotZero(t, a, "site %s: the control variate is in use", site)
					if k != 0 {
						require.Zero(t, b, "site %s: the baseline replaces b", site)
					}
				}
				reps := repetitions()
				mean, se := estimateGradient(t, s, reps)
				if k != 0 {
					requireAgree(t, exact, mean, se)
				}
				variance[k] = guideVariance(store, se, reps)
			}
			t.Logf("%s: summed variance of the guide gradient components (one step of 20 particles): leave-one-out K=2 %.4g, fitted b %.4g",
				c.name, variance[2], variance[0])
		})
	}
}

// TestBackpropQLeaveOneOutBadInput checks that a leave-one-out baseline
// whose K does not divide the rows, or is 1, is an error naming the site,
// and that the failed step changes nothing.
func TestBackpropQLeaveOneOutBadInput(t *testing.T) {
	for _, c := range []struct {
		k    int
		want string
	}{
		{3, "not a multiple of K = 3"},
		{1, "need K >= 2"},
	} {
		est := NewQControlVariate(mlpCritics(1), q.TD{})
		est.LeaveOneOut = c.k
		requireFailedStep(t, vi.Program{Model: categoricalModel}, est, []string{`site "z"`, "leave-one-out", c.want})
	}
}

// guideVariance returns the summed variance of one estimate of the guide's
// gradient components (parameters named q/...), from the standard errors
// se of a mean over reps estimates.
func guideVariance(store *nn.Store, se []float64, reps int) float64 {
	v := 0.0
	for i, name := range componentNames(store) {
		if name[:2] == "q/" {
			v += se[i] * se[i] * float64(reps)
		}
	}
	return v
}
