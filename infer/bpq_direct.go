package infer

import (
	"fmt"
	"math/rand/v2"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/q"
	"github.com/backpropq/backpropq/trace"
)

// directCosts returns the costs that the network inlines in the total
// local cost of the site at addr (q.NetworkOptions.InlineCosts): the costs
// the site feeds directly that are functions of its scope, whose
// Q-function is the cost itself (footnote 3 of the paper).
func directCosts(net *q.Network, addr string) []string {
	var costs []string
	for _, ref := range net.Local(addr) {
		if ref.IsCost() {
			costs = append(costs, ref.Cost)
		}
	}
	return costs
}

// directAt re-runs the objective on the site's tape with the site's value
// replaced by value and every other sample site replayed at its value in
// the trace, and returns the sum of the costs given, moved to the site's
// plate level, [rows x 1], with gradient paths. The costs must be
// functions of the site's scope, which the other sites' values do not
// change.
func (ev *qEval) directAt(sc *SiteContext, costs []string, value *ad.Tensor) (*ad.Tensor, error) {
	s := sc.Site
	fail := func(err error) error {
		return fmt.Errorf("BackpropQ: control variate: site %q: direct costs: %w", s.Addr, err)
	}
	if ev.run == nil {
		return nil, fail(fmt.Errorf("no objective to re-run"))
	}
	others := map[string]*ad.Tensor{}
	for _, o := range sc.Trace.Sites() {
		if o.Kind == ppl.KindSample && o.Addr != s.Addr {
			others[o.Addr] = o.Value
		}
	}
	override := trace.Override(func(o *ppl.Site) *ad.Tensor {
		if o.Addr == s.Addr {
			return value
		}
		return nil
	})
	batch := sc.Trace.Batch()
	env := ppl.Config{Tape: s.LogProb.Tape(), Params: ev.params, Batch: batch,
		Rand: rand.New(rand.NewPCG(sc.Rand.Uint64(), sc.Rand.Uint64()))}
	tr, err := ev.run(env, trace.ReplayValues(others), override, trace.ReplayPlates(sc.Trace))
	if err != nil {
		return nil, fail(err)
	}
	if got := tr.Batch(); got != batch {
		return nil, fail(fmt.Errorf("the objective ran %d particles when asked for %d; the direct costs need an objective that runs the batch it is given", got, batch))
	}
	var sum *ad.Tensor
	for _, c := range costs {
		cs := tr.Site(c)
		if cs == nil {
			return nil, fail(fmt.Errorf("cost %q is missing from the re-run", c))
		}
		sum = addOrNil(sum, ppl.Move(cs.ScaledCost(), cs.Plates, s.Plates))
	}
	return sum, nil
}
