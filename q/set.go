package q

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strings"

	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/trace"
)

// Kind selects the critic implementation a [Set] creates.
type Kind uint8

const (
	// Auto creates a [Tabular] critic for a discrete layout of at most
	// [Config].MaxCells cells and an MLP otherwise.
	Auto Kind = iota
	// TabularKind creates [Tabular] critics.
	TabularKind
	// LinearKind creates linear critics ([NewLinear]).
	LinearKind
	// MLPKind creates MLP critics ([NewMLP]).
	MLPKind
)

// Config configures a [Set].
type Config struct {
	Kind Kind
	// Hidden are the hidden sizes of MLP critics; default [32].
	Hidden []int
	// LR is the Adam learning rate of Linear and MLP critics (default
	// 0.01) and the constant step size of Tabular ones (0: 1/n averages).
	LR float64
	// MaxCells bounds the cells of a layout Auto serves with a Tabular
	// critic; default 4096.
	MaxCells int
	// Templates are address templates such as "y[*]": one critic serves
	// every site whose [Template] is listed, with the indices as an input
	// feature.
	Templates []string
	// Normalize makes Linear and MLP critics learn in normalized units
	// ([Net.NormalizeTargets]).
	Normalize bool
	// SlowTarget, when positive, is the alpha of the slow-tracking target
	// (appendix 4.3): update targets read a copy of each critic whose
	// weights slowly track the learned ones.
	SlowTarget float64
	// Seed determines the initial weights of Linear and MLP critics: the
	// critic of a key draws them from a source seeded by Seed and the key
	// alone, so that they do not depend on the step, or the goroutine, in
	// which the key is first seen, and a resumed run creates the critics
	// the uninterrupted run would have.
	Seed uint64
}

// entry is one critic of a set with its slow-tracking state.
type entry struct {
	critic Critic
	slow   *slowTarget
}

// Set holds the critics of a model, keyed by address and cost sources
// ([Set.Key]) and created on first sight of a key. A Set is not safe for
// concurrent use.
type Set struct {
	cfg       Config
	critics   map[string]*entry
	templates map[string]bool
	pending   map[string]*saved // loaded, awaiting first sight
	reinit    bool
	// created holds the critics that Evaluate created for keys seen for
	// the first time, until an update installs them: later evaluations
	// share them, so that evaluations of several traces (the chunks of a
	// step) see one critic per key, the one the first evaluation drew.
	created map[string]*entry
}

// NewSet returns an empty set of critics.
func NewSet(cfg Config) *Set {
	if cfg.LR == 0 && cfg.Kind != TabularKind {
		cfg.LR = 0.01
	}
	if cfg.MaxCells == 0 {
		cfg.MaxCells = 4096
	}
	if cfg.Hidden == nil {
		cfg.Hidden = []int{32}
	}
	s := &Set{cfg: cfg, critics: map[string]*entry{}, templates: map[string]bool{}, pending: map[string]*saved{}, created: map[string]*entry{}}
	for _, t := range cfg.Templates {
		s.templates[t] = true
	}
	return s
}

// Config returns the set's configuration.
func (s *Set) Config() Config { return s.cfg }

// templated reports whether site addr is served by a template.
func (s *Set) templated(addr string) bool {
	t, idx := Template(addr)
	return len(idx) > 0 && s.templates[t]
}

// Key returns the key of node nd's critic: the site's address (templated
// when a template serves it), a bar and the node's cost sources (each
// templated likewise, without repeats).
//
// A template's critic serves the Q-nodes of every index: its layout is the
// union of theirs, with scope sites named relative to the node's indices
// ("y[*]@-1" for the previous y), and a node without some field (y[0] has no
// previous y) reads zeros there, the index feature telling the cases
// apart. Since sources are templated too, a template is meant for merged
// networks: two Q-nodes of one site that map to one key are an error.
func (s *Set) Key(nd *Node) string {
	site := nd.Site
	tmpl := s.templated(site)
	if tmpl {
		site, _ = Template(site)
	}
	var srcs []string
	for _, f := range nd.Sources {
		if tmpl {
			f, _ = Template(f)
		}
		if !slices.Contains(srcs, f) {
			srcs = append(srcs, f)
		}
	}
	return site + "|" + strings.Join(srcs, ",")
}

// FieldName returns the name of the layout field in which the critic of
// node nd reads the value of the scope site at addr: addr itself, or for a
// critic that serves a template, addr relative to the node's indices
// ("y[*]@-1" for y[2] in the node of y[3]).
func (s *Set) FieldName(nd *Node, addr string) string {
	if !s.templated(nd.Site) {
		return addr
	}
	_, idx := Template(nd.Site)
	return relativeName(addr, idx)
}

// Keys returns the keys of the set's critics, sorted, those loaded and
// awaiting first sight included.
func (s *Set) Keys() []string {
	var k []string
	for key := range s.critics {
		k = append(k, key)
	}
	for key := range s.pending {
		if _, ok := s.critics[key]; !ok {
			k = append(k, key)
		}
	}
	slices.Sort(k)
	return k
}

// Critic returns the critic of key (a loaded one awaiting first sight
// included), or nil. The critic aliases the set's.
func (s *Set) Critic(key string) Critic {
	if e, ok := s.critics[key]; ok {
		return e.critic
	}
	if p, ok := s.pending[key]; ok {
		return p.critic
	}
	return nil
}

// Put installs c as the critic of key, replacing any other.
func (s *Set) Put(key string, c Critic) {
	e := &entry{critic: c}
	if s.cfg.SlowTarget > 0 {
		e.slow = newSlowTarget(c, s.cfg.SlowTarget)
	}
	s.critics[key] = e
	delete(s.pending, key)
	delete(s.created, key)
}

// newCritic creates the critic of a layout.
func (s *Set) newCritic(key string, layout Layout) (Critic, error) {
	kind := s.cfg.Kind
	if kind == Auto {
		kind = MLPKind
		if layout.Discrete() && cells(layout) <= float64(s.cfg.MaxCells) {
			kind = TabularKind
		}
	}
	switch kind {
	case TabularKind:
		t, err := NewTabular(layout, s.cfg.LR)
		if err != nil {
			return nil, fmt.Errorf("q: critic %q: %w", key, err)
		}
		return t, nil
	case LinearKind, MLPKind:
		rng := criticRand(s.cfg.Seed, key)
		var n *Net
		if kind == LinearKind {
			n = NewLinear(layout, s.cfg.LR, rng)
		} else {
			n = NewMLP(layout, s.cfg.Hidden, s.cfg.LR, rng)
		}
		if s.cfg.Normalize {
			n.NormalizeTargets()
		}
		return n, nil
	}
	return nil, fmt.Errorf("q: critic %q: unknown kind %d", key, kind)
}

// criticRand returns the random source of the initial weights of the
// critic of key: a PCG stream seeded by seed and the FNV-1a hash of key.
func criticRand(seed uint64, key string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(key))
	return rand.New(rand.NewPCG(seed, h.Sum64()))
}

// cells returns the number of cells of a tabular critic of l.
func cells(l Layout) float64 {
	n := 1.0
	for _, f := range l.Fields {
		switch f.Kind {
		case Binary:
			for range f.Width {
				n *= 2
			}
		case OneHot:
			n *= float64(f.Width)
		case Index:
			n *= maxIndex
		}
	}
	return n
}

// lookup returns the entry of key for layout without changing s: the
// set's own, or a new one (a loaded critic awaiting first sight, or a
// fresh critic) that [Values.install] adds to s when the values are used
// for an update.
func (s *Set) lookup(key string, layout Layout, fresh map[string]*entry) (*entry, error) {
	if e, ok := s.critics[key]; ok {
		if got := e.critic.Layout().String(); got != layout.String() {
			return nil, fmt.Errorf("q: critic %q: scope layout changed from %q to %q", key, got, layout.String())
		}
		return e, nil
	}
	if e, ok := fresh[key]; ok {
		if got := e.critic.Layout().String(); got != layout.String() {
			return nil, fmt.Errorf("q: critic %q: nodes of one key have scope layouts %q and %q", key, got, layout.String())
		}
		return e, nil
	}
	if e, ok := s.created[key]; ok && e.critic.Layout().String() == layout.String() {
		fresh[key] = e
		return e, nil
	}
	var c Critic
	var slow *slowTarget
	if p, ok := s.pending[key]; ok {
		if p.layout.String() == layout.String() {
			c = p.critic.Clone()
			if p.slow != nil && s.cfg.SlowTarget > 0 {
				slow = p.slow.restored(s.cfg.SlowTarget)
			}
		} else if !s.reinit {
			return nil, fmt.Errorf("q: critic %q: saved for scope layout %q, the model now has %q",
				key, p.layout.String(), layout.String())
		}
	}
	if c == nil {
		var err error
		if c, err = s.newCritic(key, layout); err != nil {
			return nil, err
		}
	}
	e := &entry{critic: c, slow: slow}
	if s.cfg.SlowTarget > 0 && slow == nil {
		e.slow = newSlowTarget(c, s.cfg.SlowTarget)
	}
	fresh[key] = e
	s.created[key] = e
	return e, nil
}

// Values holds the network's values on one trace: per Q-node the online
// critic's values, the values update targets read (the slow-tracking copy
// when there is one, else the same), and per cost its scaled values.
type Values struct {
	// Q[i][r] is node i's critic at row r.
	Q [][]float64
	// Target[i][r] is node i's value as read by update rules.
	Target [][]float64
	// Costs maps a cost address to its [Site.ScaledCost] values.
	Costs map[string][]float64
	// Rows is the batch size B.
	Rows int
	// Counted maps a cost whose site has a mask to the rows that count;
	// rows a mask leaves out of any of a node's sources are left out of
	// that node's update. A cost without a mask is absent.
	Counted map[string][]bool

	x     []*mat.Dense
	keys  []string
	fresh map[string]*entry
	set   *Set
}

// install adds the critics first seen in v to its set, unless the set
// gained a critic of the key meanwhile.
func (v *Values) install() {
	for key, e := range v.fresh {
		if _, ok := v.set.critics[key]; !ok {
			v.set.critics[key] = e
			delete(v.set.pending, key)
		}
		delete(v.set.created, key)
	}
	v.fresh = nil
}

// Evaluate returns the values of net's Q-nodes and costs on tr. It does not
// change the set's critics: a key seen for the first time gets a new
// critic (or a loaded one awaiting first sight, see [Load]) that joins s
// only when the values are used for an update ([Set.Apply]), so a training
// step that fails leaves the critics as they were. A new Linear or MLP
// critic's weights depend on [Config].Seed and its key only; until it
// joins s, later evaluations use the same new critic, so that the traces
// of one step see the same critics. tr must have net's shape.
func (s *Set) Evaluate(net *Network, tr *trace.Trace) (*Values, error) {
	if tr == nil || net == nil {
		return nil, fmt.Errorf("q: Evaluate: nil network or trace")
	}
	g := tr.Graph()
	if ShapeOf(g) != net.shape {
		return nil, fmt.Errorf("q: Evaluate: trace shape differs from the network's")
	}
	b := tr.Batch()
	v := &Values{Q: make([][]float64, len(net.Nodes)), Target: make([][]float64, len(net.Nodes)),
		Costs: map[string][]float64{}, Rows: b, x: make([]*mat.Dense, len(net.Nodes)), keys: make([]string, len(net.Nodes)),
		fresh: map[string]*entry{}, set: s}
	for _, c := range net.costs {
		site := g.Site(c)
		v.Costs[c] = append([]float64(nil), site.ScaledCost().Data()...)
		if site.Mask != nil {
			counted := make([]bool, b)
			for r := range counted {
				counted[r] = site.Mask.At(r, 0) != 0
			}
			if v.Counted == nil {
				v.Counted = map[string][]bool{}
			}
			v.Counted[c] = counted
		}
	}
	fzs := make([]*featurizer, len(net.Nodes))
	byKey := map[string][]int{}
	var order []string
	for i, nd := range net.Nodes {
		key := s.Key(nd)
		fz, err := newFeaturizer(nd, tr, g, s.templated(nd.Site))
		if err != nil {
			return nil, err
		}
		fzs[i], v.keys[i] = fz, key
		if _, ok := byKey[key]; !ok {
			order = append(order, key)
		}
		byKey[key] = append(byKey[key], i)
	}
	for _, key := range order {
		nodes := byKey[key]
		sites := map[string]bool{}
		for _, i := range nodes {
			if a := net.Nodes[i].Site; sites[a] {
				return nil, fmt.Errorf("q: critic %q would serve two Q-nodes of site %q; merge the network (Options.Merge, with a Reduce if needed) or drop the template", key, a)
			} else {
				sites[a] = true
			}
		}
		layouts := make([]Layout, len(nodes))
		for k, i := range nodes {
			layouts[k] = fzs[i].layout
		}
		layout := layouts[0]
		if len(nodes) > 1 {
			var err error
			if layout, err = unionLayout(layouts); err != nil {
				return nil, fmt.Errorf("q: critic %q: %w", key, err)
			}
		}
		var e *entry
		if cur, ok := s.critics[key]; ok && s.templated(net.Nodes[nodes[0]].Site) {
			// A template's critic keeps its layout; each node fills the
			// fields it has.
			e = cur
		} else {
			var err error
			if e, err = s.lookup(key, layout, v.fresh); err != nil {
				return nil, err
			}
		}
		for _, i := range nodes {
			x, err := fzs[i].into(e.critic.Layout())
			if err != nil {
				return nil, fmt.Errorf("q: critic %q: scope layout changed: %w", key, err)
			}
			v.x[i] = x
			v.Q[i] = make([]float64, b)
			e.critic.Predict(x, v.Q[i])
			if e.slow != nil {
				v.Target[i] = make([]float64, b)
				e.slow.target.Predict(x, v.Target[i])
			} else {
				v.Target[i] = v.Q[i]
			}
		}
	}
	return v, nil
}

// Local returns the total local cost of site addr at each row (Algorithm 1,
// line 16): the sum of its Q-nodes' values and of the costs inlined in
// their place; nil when the site reaches no cost.
func (v *Values) Local(net *Network, addr string) []float64 {
	terms := net.local[addr]
	if len(terms) == 0 {
		return nil
	}
	out := make([]float64, v.Rows)
	for _, r := range terms {
		src := v.Costs[r.Cost]
		if !r.IsCost() {
			src = v.Q[r.Node]
		}
		for i := range out {
			out[i] += src[i]
		}
	}
	return out
}

// Inputs returns the featurized scope of node i, the critic's input rows
// [B x W]; it aliases v.
func (v *Values) Inputs(i int) *mat.Dense { return v.x[i] }
