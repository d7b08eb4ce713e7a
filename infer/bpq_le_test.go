package infer

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/q"
	"github.com/backpropq/backpropq/vi"
)

// bitVectors returns every value of n binary columns.
func bitVectors(n int) [][]float64 {
	var out [][]float64
	for k := 0; k < 1<<n; k++ {
		v := make([]float64, n)
		for c := range v {
			v[c] = float64(k >> c & 1)
		}
		out = append(out, v)
	}
	return out
}

// leCase is a control-variate configuration of the local-expectation
// tests: its critics, how many steps they train before the check, and the
// form of the correction.
type leCase struct {
	name  string
	cfg   q.Config
	steps int
	form  cvForm
}

// cvForm is a form of mode QControlVariate.
type cvForm int

const (
	formLocalExpectation cvForm = iota
	formRelaxed
	formEnumerated
)

// mlp8 is the configuration of the MLP critics of the local-expectation
// tests, with learning rate lr.
func mlp8(lr float64) q.Config { return q.Config{Kind: q.MLPKind, Hidden: []int{8}, LR: lr, Seed: 6} }

var leCases = []leCase{
	// Critics whose weights stay at their random initialization: the
	// steps only fit the coefficients a and b.
	{name: "untrained", cfg: mlp8(1e-12), steps: 10},
	{name: "partly-trained", cfg: mlp8(0.01), steps: 100},
	// Tabular critics have no PredictFlips: two Predict calls per unit.
	{name: "tabular", cfg: q.Config{Kind: q.TabularKind, LR: 0.05}, steps: 100},
	// For comparison: longer training, and the other forms.
	{name: "trained", cfg: mlp8(0.01), steps: 1000},
	{name: "relaxed-partly-trained", cfg: mlp8(0.01), steps: 100, form: formRelaxed},
	{name: "relaxed-trained", cfg: mlp8(0.01), steps: 1000, form: formRelaxed},
	{name: "enumerated-partly-trained", cfg: mlp8(0.01), steps: 100, form: formEnumerated},
	{name: "enumerated-trained", cfg: mlp8(0.01), steps: 1000, form: formEnumerated},
}

// TestBackpropQLocalExpectationUnbiased checks the local-expectation form
// of mode QControlVariate against the exact gradient of the ELBO, by
// enumeration, of a two-layer SBN with 4 and 3 latent units, with
// untrained, partly trained and trained critics (and, for comparison, the
// relaxed and enumerated forms on the same model). It logs the summed variance of the estimates of
// the guide's gradient for each configuration.
func TestBackpropQLocalExpectationUnbiased(t *testing.T) {
	obj := sbnSizedELBO(4, 3)
	support := []siteSupport{{"h1", bitVectors(4)}, {"h2", bitVectors(3)}}
	for _, c := range leCases {
		t.Run(c.name, func(t *testing.T) {
			store := initObjectiveStore(t, obj)
			exact := exactObjectiveGradient(t, obj, store, support)
			est := NewQControlVariate(c.cfg, q.TD{})
			est.LocalExpectation = c.form == formLocalExpectation
			est.Relaxed = c.form == formRelaxed
			s := &SVI{
				Objective: obj, Estimators: Estimators{Default: est},
				Optimizer: nn.NewAdam(0.01), Params: store, Particles: 20, Seed: 3,
			}
			trainCritics(t, s, c.steps)
			for _, site := range []string{"h1", "h2"} {
				a, _ := est.Coefficients(site)
				require.NotZero(t, a, "site %s: the control variate is in use", site)
			}
			reps := repetitions()
			mean, se := estimateGradient(t, s, reps)
			requireAgree(t, exact, mean, se)
			guide, n := 0.0, 0
			for i, name := range componentNames(store) {
				if name[:2] == "q/" {
					guide += se[i] * se[i] * float64(reps)
					n++
				}
			}
			t.Logf("%s: summed variance of the %d guide gradient components (one step of %d particles): %.4g", c.name, n, s.Particles, guide)
		})
	}
}

// TestBackpropQLocalExpectationBadInput checks that the local-expectation
// form refuses a site that is not Bernoulli, naming it, and the relaxed
// form set beside it, and that the failed step changes nothing.
func TestBackpropQLocalExpectationBadInput(t *testing.T) {
	cases := []struct {
		name    string
		relaxed bool
		want    []string
	}{
		{"categorical-site", false, []string{`site "z"`, "Bernoulli", "Categorical"}},
		{"with-relaxed", true, []string{`site "z"`, "Relaxed and LocalExpectation"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			est := NewQControlVariate(mlpCritics(1), q.TD{})
			est.LocalExpectation = true
			est.Relaxed = c.relaxed
			requireFailedStep(t, vi.Program{Model: categoricalModel}, est, c.want)
		})
	}
}

// requireFailedStep checks that a step of obj with the control-variate
// estimator est fails with an error containing each of want, and changes
// no parameter and adds no critic.
func requireFailedStep(t *testing.T, obj vi.Objective, est *QControlVariate, want []string) {
	t.Helper()
	store := initObjectiveStore(t, obj)
	before := flatValues(store)
	s := &SVI{
		Objective: obj, Estimators: Estimators{Default: est},
		Optimizer: nn.NewAdam(0.01), Params: store, Particles: 4, Seed: 3,
	}
	_, err := s.Step()
	require.Error(t, err)
	for _, w := range want {
		require.ErrorContains(t, err, w)
	}
	require.Equal(t, before, flatValues(store))
	require.Empty(t, est.Critics.Set.Keys(), "a failed step adds no critic")
	require.Zero(t, s.StepCount())
}

// componentNames returns, for each component of modelGrads(store), the
// name of its parameter.
func componentNames(store *nn.Store) []string {
	var names []string
	for _, p := range store.Params() {
		if len(p.Name) >= 6 && p.Name[:6] == "infer/" {
			continue
		}
		r, c := p.Value.Dims()
		for range r * c {
			names = append(names, p.Name)
		}
	}
	return names
}

// TestBackpropQLocalExpectationWideSite checks the local-expectation form
// on a Bernoulli site of 16 units (wideModel), too wide to enumerate,
// against the closed-form gradient (see TestBackpropQRelaxedWideSite),
// with an MLP critic trained for 150 steps, and logs the summed variance
// of its estimates beside the relaxed form's with the same critics.
func TestBackpropQLocalExpectationWideSite(t *testing.T) {
	exact := wideExactGradient()
	obj := vi.Program{Model: wideModel}
	variance := map[cvForm]float64{}
	for _, form := range []cvForm{formLocalExpectation, formRelaxed} {
		cfg := mlpCritics(5)
		cfg.LR = 0.05
		est := NewQControlVariate(cfg, q.TD{})
		est.LocalExpectation = form == formLocalExpectation
		s := &SVI{
			Objective: obj, Estimators: Estimators{Default: est},
			Optimizer: nn.NewAdam(0.01), Params: initObjectiveStore(t, obj), Particles: 20, Seed: 3,
		}
		trainCritics(t, s, 150)
		a, _ := est.Coefficients("z")
		require.NotZero(t, a, "the control variate is in use")
		reps := repetitions()
		mean, se := estimateGradient(t, s, reps)
		requireAgree(t, exact, mean, se)
		for _, v := range se {
			variance[form] += v * v * float64(reps)
		}
	}
	t.Logf("summed variance of the %d logits' gradient estimates (one step of 20 particles): local expectation %.4g, relaxed %.4g",
		wideUnits, variance[formLocalExpectation], variance[formRelaxed])
}
