package q

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
)

// Critic is a learned Q-function Q_w(Sc_X): a function of a featurized
// scope (see [Layout]) fitted to sampled targets.
type Critic interface {
	// Layout returns the input layout the critic was built for.
	Layout() Layout
	// Predict writes the critic's value for each row of x, [B x W], into
	// dst, which must have B elements.
	Predict(x *mat.Dense, dst []float64)
	// Update moves the critic's values at the rows of x toward target
	// (one stochastic-gradient step on the squared error, Algorithm 1 line
	// 12). It returns an error, and changes nothing, if a target is not
	// finite or the step fails.
	Update(x *mat.Dense, target []float64) error
	// Weights returns the critic's parameters as slices that alias them;
	// the slow-tracking target (appendix 4.3) reads and writes them.
	Weights() [][]float64
	// Clone returns an independent copy.
	Clone() Critic
}

// Tabular is a critic for small discrete layouts: one value per cell of
// the scope's values. With LR zero each cell holds the running average of
// its targets (step size 1/n), the tabular setting in which TD converges to
// the true Q-function (section 3.1); a positive LR is a constant step size.
// Cells never updated have value zero.
type Tabular struct {
	LR float64

	layout Layout
	radix  []int // per input column: number of values, 0 for one-hot fields
	cells  map[uint64]int
	values []float64
	counts []float64
}

// maxIndex bounds template indices in a tabular cell key.
const maxIndex = 1 << 16

// NewTabular returns a tabular critic for layout, or an error if the
// layout is not discrete or has too many cells to key.
func NewTabular(layout Layout, lr float64) (*Tabular, error) {
	if !layout.Discrete() {
		return nil, fmt.Errorf("q: Tabular: layout %v is not discrete", layout)
	}
	if !(lr >= 0 && lr <= 1) {
		return nil, fmt.Errorf("q: Tabular: step size must be in [0, 1], got %v", lr)
	}
	t := &Tabular{LR: lr, layout: layout, cells: map[uint64]int{}}
	total := 1.0
	for _, f := range layout.Fields {
		switch f.Kind {
		case Binary:
			for range f.Width {
				t.radix = append(t.radix, 2)
				total *= 2
			}
		case OneHot:
			t.radix = append(t.radix, -f.Width)
			total *= float64(f.Width)
			for range f.Width - 1 {
				t.radix = append(t.radix, 0)
			}
		case Index:
			for range f.Width {
				t.radix = append(t.radix, maxIndex)
				total *= maxIndex
			}
		}
	}
	if total > 1<<62 {
		return nil, fmt.Errorf("q: Tabular: layout %v has too many cells", layout)
	}
	return t, nil
}

// Cells returns the number of cells seen.
func (t *Tabular) Cells() int { return len(t.values) }

// key returns the cell of row r of x.
func (t *Tabular) key(x *mat.Dense, r int) uint64 {
	var k uint64
	for c := 0; c < len(t.radix); c++ {
		n := t.radix[c]
		switch {
		case n > 0:
			v := int(math.Round(x.At(r, c)))
			v = min(max(v, 0), n-1)
			k = k*uint64(n) + uint64(v)
		case n < 0:
			w := -n
			best := 0
			for j := 1; j < w; j++ {
				if x.At(r, c+j) > x.At(r, c+best) {
					best = j
				}
			}
			k = k*uint64(w) + uint64(best)
		}
	}
	return k
}

// Layout returns the critic's layout.
func (t *Tabular) Layout() Layout { return t.layout }

// Predict writes the values of the rows' cells into dst.
func (t *Tabular) Predict(x *mat.Dense, dst []float64) {
	for r := range dst {
		if i, ok := t.cells[t.key(x, r)]; ok {
			dst[r] = t.values[i]
		} else {
			dst[r] = 0
		}
	}
}

// Update moves each row's cell toward its target, row by row.
func (t *Tabular) Update(x *mat.Dense, target []float64) error {
	if err := checkTargets(target); err != nil {
		return err
	}
	for r, y := range target {
		k := t.key(x, r)
		i, ok := t.cells[k]
		if !ok {
			i = len(t.values)
			t.cells[k] = i
			t.values = append(t.values, 0)
			t.counts = append(t.counts, 0)
		}
		t.counts[i]++
		step := t.LR
		if step == 0 {
			step = 1 / t.counts[i]
		}
		t.values[i] += step * (y - t.values[i])
	}
	return nil
}

// Weights returns the cell values.
func (t *Tabular) Weights() [][]float64 { return [][]float64{t.values} }

// Clone returns a copy.
func (t *Tabular) Clone() Critic {
	c := *t
	c.cells = make(map[uint64]int, len(t.cells))
	for k, v := range t.cells {
		c.cells[k] = v
	}
	c.values = append([]float64(nil), t.values...)
	c.counts = append([]float64(nil), t.counts...)
	c.radix = append([]int(nil), t.radix...)
	return &c
}

func checkTargets(target []float64) error {
	for r, y := range target {
		if math.IsNaN(y) || math.IsInf(y, 0) {
			return fmt.Errorf("q: target %v at row %d is not finite", y, r)
		}
	}
	return nil
}

// NetCritic is a critic computed by a small network of package nn, trained by
// Adam on the squared error: a linear function of the features
// ([NewLinear]) or a multilayer perceptron ([NewMLP]). It owns its tape and
// optimizer, and is not safe for concurrent use.
type NetCritic struct {
	layout Layout
	mlp    *nn.MLP
	opt    *nn.Adam
	tape   *ad.Tape
	steps  int
	// norm is nil, or the output normalization of NormalizeTargets:
	// {μ, σ}, the critic's value being μ + σ·mlp(x).
	norm []float64
	// moments are the running mean of the targets and of their squares,
	// and the number of updates seen.
	moments [3]float64
	// scratch is the memory of PredictVariants and PredictFlips: the
	// first layer's pre-activations, its activations and the outputs of
	// every variant or flip, reused from call to call.
	scratch [3][]float64
}

// normDecay is the decay of the running target moments of a critic with
// normalized targets.
const normDecay = 0.99

// NormalizeTargets makes n learn in normalized units, as PopArt does (van
// Hasselt et al. 2016): its value is μ + σ·mlp(x), where μ and σ are the
// running mean and standard deviation of the targets (decay 0.99, starting
// from the first update's, which sets them without touching the weights),
// and each later update first rescales the last layer so that the values at
// every input are unchanged by the new μ and σ, then takes the Adam step on
// the squared error in normalized units. A critic
// whose targets are large (costs of hundreds of nats) then does not spend
// its first thousands of steps growing its biases, nor saturate its hidden
// units doing so. It must be called before the first update.
func (n *NetCritic) NormalizeTargets() {
	if n.norm == nil {
		n.norm = []float64{0, 1}
	}
}

// renormalize updates the running moments with target and rescales the
// last layer for the new μ and σ.
func (n *NetCritic) renormalize(target []float64) {
	var m1, m2 float64
	for _, y := range target {
		m1 += y
		m2 += y * y
	}
	m1 /= float64(len(target))
	m2 /= float64(len(target))
	first := n.moments[2] == 0
	if first {
		n.moments[0], n.moments[1] = m1, m2
	} else {
		n.moments[0] = normDecay*n.moments[0] + (1-normDecay)*m1
		n.moments[1] = normDecay*n.moments[1] + (1-normDecay)*m2
	}
	n.moments[2]++
	mu := n.moments[0]
	sigma := math.Sqrt(max(n.moments[1]-mu*mu, 1e-4))
	if first {
		// The untrained network's values mean nothing: keep its weights
		// (preserving them would shrink the last layer by 1/σ and start
		// the critic flat).
		n.norm[0], n.norm[1] = mu, sigma
		return
	}
	oldMu, oldSigma := n.norm[0], n.norm[1]
	last := n.mlp.Layers[len(n.mlp.Layers)-1]
	w := last.W.Value.RawMatrix().Data
	for i := range w {
		w[i] *= oldSigma / sigma
	}
	b := last.B.Value.RawMatrix().Data
	for i := range b {
		b[i] = (oldSigma*b[i] + oldMu - mu) / sigma
	}
	n.norm[0], n.norm[1] = mu, sigma
}

// NewLinear returns a linear critic w·x + b for layout, trained by Adam with
// learning rate lr, with weights drawn from rng.
func NewLinear(layout Layout, lr float64, rng *rand.Rand) *NetCritic {
	return NewMLP(layout, nil, lr, rng)
}

// NewMLP returns a multilayer-perceptron critic for layout with tanh
// hidden layers of the given sizes, trained by Adam with learning rate lr,
// with weights drawn from rng. It panics if rng is nil or a size is not
// positive.
func NewMLP(layout Layout, hidden []int, lr float64, rng *rand.Rand) *NetCritic {
	sizes := append([]int{max(layout.Width(), 1)}, hidden...)
	sizes = append(sizes, 1)
	acts := make([]nn.Activation, len(hidden))
	for i := range acts {
		acts[i] = nn.Tanh
	}
	return &NetCritic{layout: layout, mlp: nn.NewMLP(sizes, acts, rng), opt: nn.NewAdam(lr), tape: ad.NewTape(), steps: 1}
}

// Layout returns the critic's layout.
func (n *NetCritic) Layout() Layout { return n.layout }

// Predict writes the network's outputs into dst.
func (n *NetCritic) Predict(x *mat.Dense, dst []float64) {
	defer n.tape.Reset()
	out := n.mlp.Forward(n.tape.Const(x))
	copy(dst, out.Data())
	if n.norm != nil {
		for i := range dst {
			dst[i] = n.norm[0] + n.norm[1]*dst[i]
		}
	}
}

// Update takes one Adam step on the mean squared error.
func (n *NetCritic) Update(x *mat.Dense, target []float64) error {
	if err := checkTargets(target); err != nil {
		return err
	}
	defer n.tape.Reset()
	if n.norm != nil {
		n.renormalize(target)
		scaled := make([]float64, len(target))
		for i, y := range target {
			scaled[i] = (y - n.norm[0]) / n.norm[1]
		}
		target = scaled
	}
	params := n.mlp.Params()
	for _, p := range params {
		p.ZeroGrad()
	}
	r, _ := x.Dims()
	out := n.mlp.Forward(n.tape.Const(x))
	loss := ad.Mean(ad.Square(ad.Sub(out, n.tape.FromData(r, 1, target))))
	n.tape.Backward(loss)
	if err := n.opt.Step(params); err != nil {
		return fmt.Errorf("q: critic update: %w", err)
	}
	return nil
}

// Forward returns the critic's values at the feature rows x, [B x W], as a
// [B x 1] tensor on x's tape with gradient paths to x and to the critic's
// parameters: what a control variate needs for dQ/dz (eq. 27). Backward
// passes on x's tape add into the parameters' gradients, which the
// critic's own Update clears first.
func (n *NetCritic) Forward(x *ad.Tensor) *ad.Tensor {
	out := n.mlp.Forward(x)
	if n.norm != nil {
		out = ad.Add(ad.Scale(out, n.norm[1]), x.Tape().Scalar(n.norm[0]))
	}
	return out
}

// Params returns the network's parameters; they alias the critic's.
func (n *NetCritic) Params() []*nn.Param { return n.mlp.Params() }

// Weights returns the parameters' values, and with normalized targets
// the slice {μ, σ} last.
func (n *NetCritic) Weights() [][]float64 {
	var w [][]float64
	for _, p := range n.mlp.Params() {
		w = append(w, p.Value.RawMatrix().Data)
	}
	if n.norm != nil {
		w = append(w, n.norm)
	}
	return w
}

// Clone returns a copy, optimizer state included.
func (n *NetCritic) Clone() Critic {
	opt := *n.opt
	state := map[string]*nn.ParamState{}
	for name, st := range n.opt.State() {
		cp := &nn.ParamState{Step: st.Step}
		for _, b := range st.Buffers {
			cp.Buffers = append(cp.Buffers, mat.DenseCopyOf(b))
		}
		state[name] = cp
	}
	if err := opt.SetState(state); err != nil {
		panic("q: NetCritic.Clone: " + err.Error()) // a copy of valid state is valid
	}
	c := &NetCritic{layout: n.layout, opt: &opt, tape: ad.NewTape(), steps: n.steps, moments: n.moments}
	if n.norm != nil {
		c.norm = append([]float64(nil), n.norm...)
	}
	c.mlp = &nn.MLP{Activations: append([]nn.Activation(nil), n.mlp.Activations...)}
	for _, l := range n.mlp.Layers {
		c.mlp.Layers = append(c.mlp.Layers, &nn.Linear{
			W: nn.NewParam(l.W.Name, mat.DenseCopyOf(l.W.Value)),
			B: nn.NewParam(l.B.Name, mat.DenseCopyOf(l.B.Value)),
		})
	}
	return c
}

func newTape() *ad.Tape { return ad.NewTape() }
