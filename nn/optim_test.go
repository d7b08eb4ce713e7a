package nn

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
)

func param(name string, values ...float64) *Param {
	return NewParam(name, mat.NewDense(len(values), 1, values))
}

func setGrad(p *Param, g ...float64) { p.Grad.SetCol(0, g) }

func TestSGDHandComputed(t *testing.T) {
	tests := []struct {
		name     string
		momentum float64
		want1    []float64
		want2    []float64
	}{
		// v = g; p -= 0.1·v.
		{"plain", 0, []float64{1 - 0.2, -1 - 0.05}, []float64{0.8 + 0.1, -1.05 - 0.05}},
		// v1 = g1; v2 = 0.9·v1 + g2.
		{"momentum", 0.9, []float64{1 - 0.2, -1 - 0.05}, []float64{0.8 - 0.1*(1.8-1), -1.05 - 0.1*(0.45+0.5)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := param("w", 1, -1)
			opt := &SGD{LR: 0.1, Momentum: tc.momentum}
			setGrad(p, 2, 0.5)
			require.NoError(t, opt.Step([]*Param{p}))
			require.InDeltaSlice(t, tc.want1, p.Value.RawMatrix().Data, 1e-15)
			setGrad(p, -1, 0.5)
			require.NoError(t, opt.Step([]*Param{p}))
			require.InDeltaSlice(t, tc.want2, p.Value.RawMatrix().Data, 1e-15)
			require.Equal(t, int64(2), opt.State()["w"].Step)
			require.Equal(t, "sgd", opt.Kind())
		})
	}
}

func TestAdamHandComputed(t *testing.T) {
	const lr, eps = 0.1, 1e-8
	// Beta1 = 0.5, Beta2 = 0.75: bias corrections 1-0.5 = 0.5 and
	// 1-0.75 = 0.25 at step 1, 1-0.25 = 0.75 and 1-0.5625 = 0.4375 at step 2.
	opt := &Adam{LR: lr, Beta1: 0.5, Beta2: 0.75, Eps: eps}
	p := param("w", 1, 0)

	// Step 1 with g = (2, -0.5): m = 0.5·g = (1, -0.25), v = 0.25·g² =
	// (1, 0.0625); m̂ = (2, -0.5), v̂ = (4, 0.25).
	setGrad(p, 2, -0.5)
	require.NoError(t, opt.Step([]*Param{p}))
	want1 := []float64{1 - lr*2/(2+eps), 0 - lr*(-0.5)/(0.5+eps)}
	require.InDeltaSlice(t, want1, p.Value.RawMatrix().Data, 1e-15)
	st := opt.State()["w"]
	require.Equal(t, int64(1), st.Step)
	require.InDeltaSlice(t, []float64{1, -0.25}, st.Buffers[0].RawMatrix().Data, 1e-15)
	require.InDeltaSlice(t, []float64{1, 0.0625}, st.Buffers[1].RawMatrix().Data, 1e-15)

	// Step 2 with g = (4, 0): m = (0.5+2, -0.125) = (2.5, -0.125),
	// v = (0.75+4, 0.046875) = (4.75, 0.046875).
	setGrad(p, 4, 0)
	require.NoError(t, opt.Step([]*Param{p}))
	want2 := []float64{
		want1[0] - lr*(2.5/0.75)/(math.Sqrt(4.75/0.4375)+eps),
		want1[1] - lr*(-0.125/0.75)/(math.Sqrt(0.046875/0.4375)+eps),
	}
	require.InDeltaSlice(t, want2, p.Value.RawMatrix().Data, 1e-15)
	require.InDeltaSlice(t, []float64{2.5, -0.125}, st.Buffers[0].RawMatrix().Data, 1e-15)
	require.InDeltaSlice(t, []float64{4.75, 0.046875}, st.Buffers[1].RawMatrix().Data, 1e-15)
	require.Equal(t, int64(2), st.Step)
	require.Equal(t, "adam", opt.Kind())
}

func TestAdamLazyStatePerParam(t *testing.T) {
	opt := NewAdam(0.01)
	early := param("early", 0)
	for range 3 {
		setGrad(early, 1)
		require.NoError(t, opt.Step([]*Param{early}))
	}
	late := param("late", 0)
	setGrad(early, 1)
	setGrad(late, 3)
	require.NoError(t, opt.Step([]*Param{early, late}))
	require.Equal(t, int64(4), opt.State()["early"].Step)
	require.Equal(t, int64(1), opt.State()["late"].Step)
	// A bias-corrected first step moves by LR·|g|/(|g|+Eps).
	require.InDelta(t, -0.01*3/(3+1e-8), late.Value.At(0, 0), 1e-15)
}

func TestOptimizerErrorsChangeNothing(t *testing.T) {
	optimizers := map[string]func() Optimizer{
		"sgd":  func() Optimizer { return &SGD{LR: 0.1, Momentum: 0.5} },
		"adam": func() Optimizer { return NewAdam(0.1) },
	}
	tests := []struct {
		name  string
		setup func(a, b *Param) []*Param
		msg   string
	}{
		{"NaN gradient", func(a, b *Param) []*Param { setGrad(b, 1, math.NaN()); return []*Param{a, b} }, `parameter "b": gradient is NaN at row 1, column 0`},
		{"Inf gradient", func(a, b *Param) []*Param { setGrad(b, math.Inf(-1), 0); return []*Param{a, b} }, `parameter "b": gradient is -Inf at row 0, column 0`},
		{"duplicate name", func(a, b *Param) []*Param { b.Name = "a"; return []*Param{a, b} }, `two parameters named "a"`},
		{"same param twice", func(a, b *Param) []*Param { return []*Param{a, b, a} }, `two parameters named "a"`},
		{"nil param", func(a, b *Param) []*Param { return []*Param{a, nil} }, "parameter 1 is nil"},
		{"grad shape", func(a, b *Param) []*Param { b.Grad = mat.NewDense(1, 2, nil); return []*Param{a, b} }, "gradient shape [1x2] differs from value shape [2x1]"},
		{"state shape", func(a, b *Param) []*Param {
			return []*Param{a, NewParam("b", mat.NewDense(3, 1, nil))}
		}, `parameter "b" has shape [3x1] but its optimizer state has [2x1]`},
	}
	for kind, newOpt := range optimizers {
		for _, tc := range tests {
			t.Run(kind+"/"+tc.name, func(t *testing.T) {
				opt := newOpt()
				a, b := param("a", 1, 2), param("b", 3, 4)
				setGrad(a, 0.5, -0.5)
				setGrad(b, 1, 1)
				require.NoError(t, opt.Step([]*Param{a, b}))
				snapA, snapB := mat.DenseCopyOf(a.Value), mat.DenseCopyOf(b.Value)
				snapState := copyState(opt.State())

				err := opt.Step(tc.setup(a, b))
				require.ErrorContains(t, err, tc.msg)
				require.True(t, mat.Equal(snapA, a.Value))
				require.True(t, mat.Equal(snapB, b.Value))
				require.Equal(t, snapState, copyState(opt.State()))
			})
		}
	}
}

func copyState(state map[string]*ParamState) map[string]ParamState {
	out := make(map[string]ParamState, len(state))
	for name, st := range state {
		c := ParamState{Step: st.Step}
		for _, b := range st.Buffers {
			c.Buffers = append(c.Buffers, mat.DenseCopyOf(b))
		}
		out[name] = c
	}
	return out
}

func TestOptimizerSettings(t *testing.T) {
	tests := []struct {
		opt Optimizer
		msg string
	}{
		{&SGD{LR: -1}, "LR and Momentum must be finite and >= 0"},
		{&SGD{LR: 0.1, Momentum: math.NaN()}, "LR and Momentum must be finite and >= 0"},
		{&Adam{LR: math.Inf(1), Beta1: 0.9, Beta2: 0.9, Eps: 1}, "LR must be finite"},
		{&Adam{LR: 1, Beta1: 1, Beta2: 0.9, Eps: 1}, "Beta1 must be in [0, 1), got 1"},
		{&Adam{LR: 1, Beta1: 0.9, Beta2: -0.1, Eps: 1}, "Beta2 must be in [0, 1), got -0.1"},
		{&Adam{LR: 1, Beta1: 0.9, Beta2: 0.9}, "Eps must be finite and > 0, got 0"},
	}
	for _, tc := range tests {
		p := param("a", 1)
		setGrad(p, 1)
		require.ErrorContains(t, tc.opt.Step([]*Param{p}), tc.msg)
		require.Equal(t, 1.0, p.Value.At(0, 0))
		require.Empty(t, tc.opt.State())
	}
}

func TestSetState(t *testing.T) {
	good := func(n int) map[string]*ParamState {
		st := &ParamState{Step: 3}
		for range n {
			st.Buffers = append(st.Buffers, mat.NewDense(2, 1, []float64{1, 2}))
		}
		return map[string]*ParamState{"w": st}
	}
	tests := []struct {
		name  string
		opt   Optimizer
		state map[string]*ParamState
		msg   string
	}{
		{"sgd ok", &SGD{}, good(1), ""},
		{"adam ok", NewAdam(1), good(2), ""},
		{"sgd two buffers", &SGD{}, good(2), "has 2 buffers, want 1"},
		{"adam one buffer", NewAdam(1), good(1), "has 1 buffers, want 2"},
		{"negative step", &SGD{}, map[string]*ParamState{"w": {Step: -1, Buffers: good(1)["w"].Buffers}}, "negative step count"},
		{"nil entry", &SGD{}, map[string]*ParamState{"w": nil}, "is nil"},
		{"mixed shapes", NewAdam(1), map[string]*ParamState{"w": {Buffers: []*mat.Dense{mat.NewDense(1, 1, nil), mat.NewDense(2, 1, nil)}}}, "buffers of shapes"},
		{"negative second moment", NewAdam(1), map[string]*ParamState{"w": {Buffers: []*mat.Dense{mat.NewDense(1, 1, nil), mat.NewDense(1, 1, []float64{-1})}}}, "negative second moment"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opt.SetState(tc.state)
			if tc.msg == "" {
				require.NoError(t, err)
				require.Equal(t, tc.state, tc.opt.State())
				return
			}
			require.ErrorContains(t, err, tc.msg)
			require.Empty(t, tc.opt.State())
		})
	}
}

func TestClipGradNorm(t *testing.T) {
	tests := []struct {
		name    string
		a, b    []float64 // gradients
		maxNorm float64
		norm    float64
		wantA   []float64
	}{
		{"clipped", []float64{3, 4}, []float64{12}, 6.5, 13, []float64{1.5, 2}},
		{"under the limit", []float64{3, 4}, []float64{12}, 20, 13, []float64{3, 4}},
		{"at the limit", []float64{3, 4}, []float64{12}, 13, 13, []float64{3, 4}},
		{"zero", []float64{0, 0}, []float64{0}, 1, 0, []float64{0, 0}},
		{"huge without overflow", []float64{3e200, 4e200}, []float64{12e200}, 13e199, 13e200, []float64{3e199, 4e199}},
		{"tiny without underflow", []float64{3e-200, 4e-200}, []float64{12e-200}, 1, 13e-200, []float64{3e-200, 4e-200}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := param("a", make([]float64, len(tc.a))...), param("b", make([]float64, len(tc.b))...)
			setGrad(a, tc.a...)
			setGrad(b, tc.b...)
			norm := ClipGradNorm([]*Param{a, b}, tc.maxNorm)
			require.InEpsilon(t, tc.norm+1e-300, norm+1e-300, 1e-14)
			for i, w := range tc.wantA {
				require.InEpsilon(t, w+1e-300, a.Grad.At(i, 0)+1e-300, 1e-14)
			}
			after := math.Hypot(math.Hypot(a.Grad.At(0, 0), a.Grad.At(1, 0)), b.Grad.At(0, 0))
			require.LessOrEqual(t, after, tc.maxNorm*(1+1e-14))
		})
	}

	a := param("a", 0, 0)
	setGrad(a, math.NaN(), 1)
	require.True(t, math.IsNaN(ClipGradNorm([]*Param{a}, 1)))
	require.Equal(t, 1.0, a.Grad.At(1, 0), "non-finite norm leaves gradients alone")
	setGrad(a, math.Inf(1), 1)
	require.True(t, math.IsInf(ClipGradNorm([]*Param{a}, 1), 1))
	require.Panics(t, func() { ClipGradNorm([]*Param{a}, 0) })
	require.Panics(t, func() { ClipGradNorm([]*Param{a}, math.NaN()) })
}
