package nn

import (
	"fmt"
	"math"
	"sync"

	"gonum.org/v1/gonum/mat"
)

// Optimizer updates parameters from their gradients. Its state is kept per
// parameter name and exposed for checkpoints. Optimizers are not safe for
// concurrent use.
type Optimizer interface {
	// Step updates each parameter from its gradient. It returns an error,
	// and changes nothing, if the optimizer's settings are invalid, two
	// parameters share a name, a gradient's shape differs from its value's,
	// a gradient is NaN or infinite, or the state kept for a name has
	// another shape than the parameter.
	Step(params []*Param) error
	// Kind names the algorithm ("sgd", "adam"); a checkpoint's state is
	// restored only into an optimizer of the same kind.
	Kind() string
	// State returns the state keyed by parameter name. The map and the
	// matrices alias the optimizer's and must not be modified.
	State() map[string]*ParamState
	// SetState checks state and makes it the optimizer's (without copying
	// it), replacing all previous state. If state is invalid, SetState
	// returns an error and changes nothing.
	SetState(state map[string]*ParamState) error
}

// ParamState is an optimizer's state for one parameter: the number of
// updates applied to it and buffers of the parameter's shape ([SGD]: the
// velocity; [Adam]: the first and second moment estimates).
type ParamState struct {
	Step    int64
	Buffers []*mat.Dense
}

// checkParams validates params before any update and returns the sum of
// the squares of their gradients ([NormStepper]).
func checkParams(kind string, params []*Param, state map[string]*ParamState) (float64, error) {
	for i, p := range params {
		if p == nil || p.Var == nil || p.Value == nil || p.Grad == nil {
			return 0, fmt.Errorf("nn: %s: parameter %d is nil or has no value or gradient", kind, i)
		}
	}
	if name, dup := duplicateName(params); dup {
		return 0, fmt.Errorf("nn: %s: two parameters named %q (register layers in a Store to give them unique names)", kind, name)
	}
	total := 0.0
	for _, p := range params {
		r, c := p.Value.Dims()
		if gr, gc := p.Grad.Dims(); gr != r || gc != c {
			return 0, fmt.Errorf("nn: %s: parameter %q: gradient shape [%dx%d] differs from value shape [%dx%d]", kind, p.Name, gr, gc, r, c)
		}
		ss, err := gradSumSquares(kind, p)
		if err != nil {
			return 0, err
		}
		total += ss
		if st := state[p.Name]; st != nil {
			for _, b := range st.Buffers {
				if br, bc := b.Dims(); br != r || bc != c {
					return 0, fmt.Errorf("nn: %s: parameter %q has shape [%dx%d] but its optimizer state has [%dx%d]", kind, p.Name, r, c, br, bc)
				}
			}
		}
	}
	return total, nil
}

// duplicateName returns a name that two of params share. It compares
// pairs when there are few parameters, which allocates nothing, and uses a
// map otherwise.
func duplicateName(params []*Param) (string, bool) {
	if len(params) <= 64 {
		for i, p := range params {
			for _, q := range params[:i] {
				if p.Name == q.Name {
					return p.Name, true
				}
			}
		}
		return "", false
	}
	seen := nameSets.Get().(map[string]bool)
	defer func() {
		clear(seen)
		nameSets.Put(seen)
	}()
	for _, p := range params {
		if seen[p.Name] {
			return p.Name, true
		}
		seen[p.Name] = true
	}
	return "", false
}

// nameSets holds the maps of duplicateName, reused from call to call.
var nameSets = sync.Pool{New: func() any { return map[string]bool{} }}

// checkState validates a state map of an optimizer whose entries each hold
// nbuf buffers of one shape.
func checkState(kind string, nbuf int, state map[string]*ParamState) error {
	for name, st := range state {
		if st == nil {
			return fmt.Errorf("nn: %s: state of %q is nil", kind, name)
		}
		if st.Step < 0 {
			return fmt.Errorf("nn: %s: state of %q: negative step count %d", kind, name, st.Step)
		}
		if len(st.Buffers) != nbuf {
			return fmt.Errorf("nn: %s: state of %q has %d buffers, want %d", kind, name, len(st.Buffers), nbuf)
		}
		for i, b := range st.Buffers {
			if b == nil {
				return fmt.Errorf("nn: %s: state of %q: buffer %d is nil", kind, name, i)
			}
			r, c := b.Dims()
			if r0, c0 := st.Buffers[0].Dims(); r != r0 || c != c0 {
				return fmt.Errorf("nn: %s: state of %q: buffers of shapes [%dx%d] and [%dx%d]", kind, name, r0, c0, r, c)
			}
		}
	}
	return nil
}

// stateFor returns the state of p, creating it with nbuf zero buffers.
func stateFor(state map[string]*ParamState, p *Param, nbuf int) *ParamState {
	st := state[p.Name]
	if st == nil {
		r, c := p.Value.Dims()
		st = &ParamState{Buffers: make([]*mat.Dense, nbuf)}
		for i := range st.Buffers {
			st.Buffers[i] = mat.NewDense(r, c, nil)
		}
		state[p.Name] = st
	}
	return st
}

// rowOf returns row i of d.
func rowOf(d *mat.Dense, i int) []float64 {
	raw := d.RawMatrix()
	return raw.Data[i*raw.Stride : i*raw.Stride+raw.Cols]
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// SGD is stochastic gradient descent with momentum: for each parameter,
// velocity v ← Momentum·v + grad and value ← value - LR·v (the convention
// of PyTorch; Momentum 0 is plain gradient descent). The zero value has LR
// 0; set the fields before the first step.
type SGD struct {
	LR       float64
	Momentum float64

	state map[string]*ParamState
}

// Kind returns "sgd".
func (o *SGD) Kind() string { return "sgd" }

// State returns the velocities keyed by parameter name; see [Optimizer].
func (o *SGD) State() map[string]*ParamState {
	if o.state == nil {
		o.state = make(map[string]*ParamState)
	}
	return o.state
}

// SetState replaces the state; each entry must hold one buffer, the
// velocity.
func (o *SGD) SetState(state map[string]*ParamState) error {
	if err := checkState("SGD", 1, state); err != nil {
		return err
	}
	o.state = state
	return nil
}

// Step updates params; see [Optimizer]. LR and Momentum must be finite and
// non-negative.
func (o *SGD) Step(params []*Param) error {
	if !finite(o.LR) || o.LR < 0 || !finite(o.Momentum) || o.Momentum < 0 {
		return fmt.Errorf("nn: SGD: LR and Momentum must be finite and >= 0, got %v and %v", o.LR, o.Momentum)
	}
	state := o.State()
	if _, err := checkParams("SGD", params, state); err != nil {
		return err
	}
	for _, p := range params {
		st := stateFor(state, p, 1)
		st.Step++
		mu, lr := o.Momentum, o.LR
		for i := range p.Value.RawMatrix().Rows {
			grad := rowOf(p.Grad, i)
			vel, value := rowOf(st.Buffers[0], i)[:len(grad)], rowOf(p.Value, i)[:len(grad)]
			for j, g := range grad {
				vel[j] = mu*vel[j] + g
				value[j] -= lr * vel[j]
			}
		}
	}
	return nil
}

// Adam is the method of Kingma and Ba (2015) with bias correction. For
// each parameter, at its t-th step,
//
//	m ← Beta1·m + (1-Beta1)·g,  v ← Beta2·v + (1-Beta2)·g²
//	value ← value - LR · (m / (1-Beta1^t)) / (sqrt(v / (1-Beta2^t)) + Eps)
//
// The step count t is kept per parameter, so a parameter created later is
// corrected from its own first step. [NewAdam] sets the usual defaults; a
// struct literal must set every field.
type Adam struct {
	LR, Beta1, Beta2, Eps float64

	state map[string]*ParamState
	task  adamTask // the update in progress, kept here so a step allocates nothing
}

// NewAdam returns Adam with learning rate lr, Beta1 0.9, Beta2 0.999 and
// Eps 1e-8.
func NewAdam(lr float64) *Adam {
	return &Adam{LR: lr, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
}

// Kind returns "adam".
func (o *Adam) Kind() string { return "adam" }

// State returns the moment estimates and step counts keyed by parameter
// name; see [Optimizer].
func (o *Adam) State() map[string]*ParamState {
	if o.state == nil {
		o.state = make(map[string]*ParamState)
	}
	return o.state
}

// SetState replaces the state; each entry must hold two buffers, the first
// and second moments, and the second must be non-negative.
func (o *Adam) SetState(state map[string]*ParamState) error {
	if err := checkState("Adam", 2, state); err != nil {
		return err
	}
	for name, st := range state {
		if mat.Min(st.Buffers[1]) < 0 {
			return fmt.Errorf("nn: Adam: state of %q: negative second moment", name)
		}
	}
	o.state = state
	return nil
}

// Step updates params; see [Optimizer]. LR must be finite and
// non-negative, Beta1 and Beta2 in [0, 1), Eps finite and positive.
func (o *Adam) Step(params []*Param) error {
	_, err := o.StepNorm(params)
	return err
}

// StepNorm is [Adam.Step] that also returns the sum of the squares of the
// gradients; see [NormStepper].
func (o *Adam) StepNorm(params []*Param) (float64, error) {
	switch {
	case !finite(o.LR) || o.LR < 0:
		return 0, fmt.Errorf("nn: Adam: LR must be finite and >= 0, got %v", o.LR)
	case !(o.Beta1 >= 0 && o.Beta1 < 1):
		return 0, fmt.Errorf("nn: Adam: Beta1 must be in [0, 1), got %v", o.Beta1)
	case !(o.Beta2 >= 0 && o.Beta2 < 1):
		return 0, fmt.Errorf("nn: Adam: Beta2 must be in [0, 1), got %v", o.Beta2)
	case !finite(o.Eps) || o.Eps <= 0:
		return 0, fmt.Errorf("nn: Adam: Eps must be finite and > 0, got %v", o.Eps)
	}
	state := o.State()
	ss, err := checkParams("Adam", params, state)
	if err != nil {
		return 0, err
	}
	b1, b2, eps := o.Beta1, o.Beta2, o.Eps
	for _, p := range params {
		st := stateFor(state, p, 2)
		st.Step++
		t := float64(st.Step)
		// value -= LR·(m/bc1)/(sqrt(v/bc2)+Eps), with one division and one
		// square root per element.
		lr := o.LR / (1 - math.Pow(b1, t))
		scale := 1 / math.Sqrt(1-math.Pow(b2, t))
		o.task = adamTask{p: p, m: st.Buffers[0], v: st.Buffers[1],
			c: adamCoef{b1: b1, c1: 1 - b1, b2: b2, c2: 1 - b2, lr: lr, scale: scale, eps: eps}}
		o.task.run()
	}
	return ss, nil
}

// ClipGradNorm scales the gradients of params so that their joint L2 norm
// (over all elements of all gradients) is at most maxNorm, and returns the
// norm before clipping. If that norm is NaN or infinite the gradients are
// left as they are (an optimizer's Step then reports them). ClipGradNorm
// panics if maxNorm is not positive.
func ClipGradNorm(params []*Param, maxNorm float64) float64 {
	if !(maxNorm > 0) {
		panic(fmt.Sprintf("nn: ClipGradNorm: maxNorm must be > 0, got %v", maxNorm))
	}
	// Scale by the largest magnitude so that the sum of squares neither
	// overflows nor underflows.
	var largest float64
	for _, p := range params {
		for _, g := range gradRows(p) {
			for _, x := range g {
				if math.IsNaN(x) {
					return x
				}
				largest = max(largest, math.Abs(x))
			}
		}
	}
	if largest == 0 || math.IsInf(largest, 0) {
		return largest
	}
	var sum float64
	for _, p := range params {
		for _, g := range gradRows(p) {
			for _, x := range g {
				sum += (x / largest) * (x / largest)
			}
		}
	}
	norm := largest * math.Sqrt(sum)
	if norm > maxNorm && finite(norm) {
		s := maxNorm / norm
		for _, p := range params {
			for _, g := range gradRows(p) {
				for j := range g {
					g[j] *= s
				}
			}
		}
	}
	return norm
}

func gradRows(p *Param) [][]float64 {
	r, c := p.Grad.Dims()
	raw := p.Grad.RawMatrix()
	if raw.Stride == c {
		return [][]float64{raw.Data[:r*c]}
	}
	out := make([][]float64, r)
	for i := range out {
		out[i] = raw.Data[i*raw.Stride : i*raw.Stride+c]
	}
	return out
}
