package vi

import (
	"fmt"

	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/trace"
)

// Objective turns a program into a multi-cost stochastic computation graph:
// Run returns a trace whose sample sites are the random variables being
// trained and whose cost sites (kind cost or observe) sum to the loss. The
// estimators of package infer see only this trace and its graph, so each
// site's learning signal is the sum of the costs it can reach.
//
// handlers apply to the run of the stochastic part (the guide of an
// [ELBO], the program itself for [Program]), so that an estimator can re-run
// the objective with values substituted at chosen sites (trace.Override) or
// replayed (trace.Replay).
type Objective interface {
	Run(env ppl.Config, handlers ...ppl.Handler) (*trace.Trace, error)
}

// Program is the objective of a stochastic program whose costs are its own
// cost and observe sites: the expected sum of its costs.
type Program struct {
	Model ppl.Model
	// Handlers apply to every run of the program, before the handlers
	// given to Run: trace.Condition to feed it data by address, a
	// ppl.Config with StrictProvenance, say. A trace.Condition, trace.Do
	// or trace.Substitute address that the program never reaches is an
	// error naming it, unless the handler is wrapped with trace.Optional.
	Handlers []ppl.Handler
}

// Run runs the program under env, p.Handlers and handlers.
func (p Program) Run(env ppl.Config, handlers ...ppl.Handler) (*trace.Trace, error) {
	hs := make([]ppl.Handler, 0, 1+len(p.Handlers)+len(handlers))
	hs = append(append(append(hs, env), p.Handlers...), handlers...)
	tr, err := trace.Run(p.Model, hs...)
	if err != nil {
		return nil, err
	}
	if err := trace.CheckAddrs(tr, p.Handlers...); err != nil {
		return nil, fmt.Errorf("vi: Program: %w", err)
	}
	return tr, nil
}
