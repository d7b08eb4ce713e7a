package nn

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// BenchmarkAdamStep times one Adam step over the parameters of a
// 784-200-784 MLP (about 315,000 values).
func BenchmarkAdamStep(b *testing.B) {
	s := NewStore()
	require.NoError(b, s.Register("mlp", NewMLP([]int{784, 200, 784}, []Activation{Tanh}, newRand())))
	params := s.Params()
	for _, p := range params {
		Normal{Std: 0.01}.Init(p.Grad, newRand())
	}
	opt := NewAdam(1e-3)
	b.ReportAllocs()
	for b.Loop() {
		if err := opt.Step(params); err != nil {
			b.Fatal(err)
		}
	}
}
