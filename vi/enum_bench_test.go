package vi_test

import (
	"testing"

	"github.com/backpropq/backpropq/infer"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/vi"
)

// benchMixture times SVI steps of the 3-component mixture on 300 points
// with objective obj and estimators est.
func benchMixture(b *testing.B, obj vi.Objective, est infer.Estimators) {
	svi := &infer.SVI{Objective: obj, Estimators: est, Optimizer: nn.NewAdam(0.05), Params: nn.NewStore(), Particles: 1, Seed: 1}
	if _, err := svi.Step(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := svi.Step(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "steps/s")
}

// BenchmarkMixtureTraceEnum sums the assignments out in the model.
func BenchmarkMixtureTraceEnum(b *testing.B) {
	xs := mixData(0, 300)
	start := []float64{xs[0], xs[1], xs[2]}
	benchMixture(b, vi.TraceEnum{ELBO: vi.ELBO{Model: mixModel(xs), Guide: mixGuide(start)}, Site: "z"}, infer.Estimators{})
}

// BenchmarkMixtureGuideEnumerate gives the assignments a mean-field
// guide trained with infer.Enumerate.
func BenchmarkMixtureGuideEnumerate(b *testing.B) {
	xs := mixData(0, 300)
	start := []float64{xs[0], xs[1], xs[2]}
	model := mixModel(xs)
	assign, err := infer.NewAutoDiscrete(model, infer.AutoOptions{Sites: []string{"z"}})
	if err != nil {
		b.Fatal(err)
	}
	obj := vi.ELBO{Model: model, Guide: infer.Guides(mixGuide(start), assign.Guide)}
	benchMixture(b, obj, infer.Estimators{Sites: map[string]infer.Estimator{"z": infer.Enumerate{}}})
}
