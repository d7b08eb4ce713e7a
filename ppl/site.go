package ppl

import (
	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl/dist"
)

// Kind says what a [Site] is.
type Kind uint8

// The kinds of site. Only sample sites are random variables of the
// stochastic computation graph; observe and cost sites are its costs.
const (
	// KindSample is a random variable drawn by [Sample].
	KindSample Kind = iota + 1
	// KindObserve is a value scored under a distribution by [Observe], or
	// a sample site turned into an observation by a handler. Its cost is
	// the negative log-probability.
	KindObserve
	// KindCost is a [B x 1] cost to minimize, recorded by [Cost].
	KindCost
	// KindParam is a trainable parameter bound to the run's tape by [Param]
	// or [Module].
	KindParam
	// KindDeterministic is a named intermediate recorded by
	// [Deterministic], or a sample site whose value a handler fixed
	// without scoring it.
	KindDeterministic
	// KindPlate is a plate entered by [Plate]: its address is the plate's
	// and its last Plates frame the plate itself ([Site.Frame]).
	KindPlate
)

var kindNames = [...]string{"invalid", "sample", "observe", "cost", "param", "deterministic", "plate"}

// String returns the kind's name in lower case, e.g. "sample".
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "invalid"
}

// Site is one effect of a model run: the message that [Sample], [Observe],
// [Cost], [Param], [Module] and [Deterministic] send through the handler
// stack, and afterwards the record a trace keeps of it.
//
// A primitive fills in Addr, Kind, ID, Dist and, where the caller supplies
// one, Value, then passes the site to the first [Handler]. Handlers may
// change any field on the way in (a replay sets Value, a condition turns
// the site into an observation) and read the finished site on the way out.
// The default behaviour, run after the last handler, fills in whatever is
// still missing: it samples, scores, validates, and sets the provenance and
// Parents, as each field's comment says.
//
// A Site is owned by the run that created it; handlers must not keep a
// pointer to it past the run unless they record it, as trace.Record does.
// Like its tensors, the Site itself is valid until the run's tape is
// reset: its memory then serves the sites of later runs on the tape.
type Site struct {
	// Addr is the full address, scopes included, e.g. "decoder/y[3]".
	Addr string
	// Kind is what the site is; a handler may turn a sample site into an
	// observe or deterministic site.
	Kind Kind
	// ID is the run-local id of a sample site, the id its value's
	// provenance holds; -1 for every other kind. IDs increase in
	// execution order from [Config].FirstID; they need not be dense.
	ID int
	// Dist is the distribution of a sample or observe site; nil otherwise.
	Dist dist.Distribution

	// Value is the site's value. For a sample site the default behaviour
	// draws it (RSample when Dist is [dist.Reparameterized] and NoRSample
	// is false) unless a handler set it, and then replaces its provenance
	// by {ID}, so the value of a sample site always has provenance {ID}.
	// For an observe site it is the observed tensor, unchanged; for a cost
	// the cost; for a param the parameter bound to the tape; for a
	// deterministic site the recorded tensor, unchanged.
	Value *ad.Tensor
	// LogProb is log p(Value | parents), [B x 1], for sample and observe
	// sites; nil when the site is not scored (substituted or intervened
	// values). It is neither scaled nor masked: see [Site.ScaledLogProb].
	LogProb *ad.Tensor
	// Cost is the [B x 1] cost of a cost site, and -LogProb for an observe
	// site; nil otherwise. Unscaled and unmasked: see [Site.ScaledCost].
	Cost *ad.Tensor
	// Scale multiplies the site's log-probability and cost when they are
	// summed into an objective (minibatch rescaling). It starts at 1, or
	// at the Scale of the site's plates (see [Stack.Scale]).
	Scale float64
	// Plates are the plates the site is inside, outermost first; its
	// value, log-prob and cost have their rows (see [Stack]). A site
	// inside subsampled plates starts with Scale the product of their
	// size/n.
	Plates Stack
	// Mask, when not nil, is a tensor of one column and the site's rows
	// whose non-zero rows count; the others are left out of sums. Nil
	// means every row counts.
	Mask *ad.Tensor
	// Parents are the ids of the sample sites this site depends on
	// directly: for a sample site, the provenance of its distribution's
	// parameters; for an observe site, the provenance of its log-prob; for
	// a cost, the provenance of the cost; for a deterministic site, the
	// provenance of its value. Parameters carry no provenance, so shared
	// parameters never make a site a parent of another.
	Parents ad.Provenance
	// AssumedParents reports that Parents were assumed rather than read
	// off the data flow: the value of a cost or observe site carried no
	// provenance (it was computed in plain Go, say, and not through
	// [Lift]) in a run that had sampled sites before it, so it is taken
	// to depend on every one of them. The learning signals stay unbiased,
	// with more variance; [Config].StrictProvenance makes this an error.
	AssumedParents bool

	// Param is the parameter of a param site, nil when a handler
	// substituted its value.
	Param *nn.Param

	// NoRSample, set by a handler, makes the default draw a sample site
	// with Sample even when its distribution can RSample, so that no
	// gradient flows from the value to the distribution's parameters.
	NoRSample bool
	// Reparameterized reports that the value was drawn with RSample, so
	// gradients flow through it to the distribution's parameters.
	Reparameterized bool
	// Replayed reports that a handler supplied the value of a sample site
	// from an earlier trace; the value was checked against the support and
	// scored under Dist.
	Replayed bool
	// Conditioned reports that a handler supplied the observed value of an
	// observe site (trace.Condition); a value of another tape than the
	// run's is then copied onto it as a constant, so that data prepared
	// once serve every run.
	Conditioned bool
	// Substituted reports that a handler put an arbitrary tensor in place
	// of a sample site's value (a relaxed or mean-field value, say). The
	// value keeps its gradient path, gets provenance {ID} like a sample,
	// is neither validated nor scored, and the site stays a random
	// variable of the graph, so a substituted run has the shape of an
	// ordinary one.
	Substituted bool
	// Intervened reports that a handler fixed a sample site's value
	// without scoring it; such a site has kind [KindDeterministic] and is
	// not a random variable of the graph.
	Intervened bool
	// Blocked hides the site from the handlers after the one that set it;
	// the default behaviour still runs.
	Blocked bool

	// What Param needs to create a parameter the store does not hold.
	rows, cols int
	init       nn.Initializer
	module     bool
	// box is the distribution Sample or Observe stored, which the next
	// run on the tape that reuses this record may store again.
	box dist.Distribution
}

// Stochastic reports whether s is a random variable of the stochastic
// computation graph: a sample site.
func (s *Site) Stochastic() bool { return s.Kind == KindSample }

// IsCost reports whether s is a cost of the stochastic computation graph:
// a cost or observe site.
func (s *Site) IsCost() bool { return s.Kind == KindCost || s.Kind == KindObserve }

// ScaledLogProb returns LogProb multiplied by Scale, with the rows that
// Mask leaves out set to zero: a new tensor on the run's tape, or LogProb
// itself when Scale is 1 and Mask is nil; nil when the site has no
// log-prob.
func (s *Site) ScaledLogProb() *ad.Tensor { return s.weigh(s.LogProb) }

// ScaledCost returns Cost multiplied by Scale, with the rows that Mask
// leaves out set to zero: a new tensor on the run's tape, or Cost itself
// when Scale is 1 and Mask is nil; nil when the site has no cost.
func (s *Site) ScaledCost() *ad.Tensor { return s.weigh(s.Cost) }

func (s *Site) weigh(t *ad.Tensor) *ad.Tensor {
	if t == nil {
		return nil
	}
	if s.Scale != 1 {
		t = ad.Scale(t, s.Scale)
	}
	if s.Mask != nil {
		// Where, not a product, so that a -Inf log-prob in a row that does
		// not count gives 0 rather than NaN.
		t = ad.Where(s.Mask, t, t.Tape().Scalar(0))
	}
	return t
}

// Handler is an effect handler: it sees every site a model's primitives
// send, and wraps the handlers after it the way net/http middleware wraps
// the next handler. Handle may change the site, then must call next(s)
// exactly once to pass it on (the last next runs the default behaviour),
// and may read or change the finished site after next returns.
//
// A run's handlers form a chain in the order given: the first sees each
// site first, so it is the innermost in the sense of Pyro's nested
// handlers, and the last sees it just before the default behaviour. A site
// that a handler marks Blocked skips every later handler and goes straight
// to the default behaviour.
//
// A handler that calls next(s) and nothing else is the identity, and a
// valid handler.
type Handler interface {
	Handle(s *Site, next func(*Site))
}

// HandlerFunc adapts an ordinary function to a [Handler].
type HandlerFunc func(s *Site, next func(*Site))

// Handle calls f(s, next).
func (f HandlerFunc) Handle(s *Site, next func(*Site)) { f(s, next) }

// Configurer is an optional interface of a [Handler] that sets up the run
// (tape, random source, parameter store, batch size) before the model
// starts. [Run] calls Configure on each such handler in order, so a later
// one overrides an earlier one.
type Configurer interface {
	Configure(cfg *Config)
}
