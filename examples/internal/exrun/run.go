package exrun

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// InterruptContext returns a context that is cancelled at the first
// Ctrl-C (SIGINT) or SIGTERM, and its stop function, which restores the
// default behavior (a second Ctrl-C after stop kills the program). A
// training loop checks ctx.Err() before each step, so it stops after the
// current one and can still save its state.
func InterruptContext(parent context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
}

// Budget is when a run stops: the -steps and -duration flags of the
// examples.
type Budget struct {
	// Steps is the total step count to stop at, resumed steps included;
	// 0 or less means no step limit.
	Steps int64
	// Duration is the training time allowed in this session; 0 or less
	// means no time limit.
	Duration time.Duration
}

// Done reports whether a run that has done step steps in all and trained
// for elapsed in this session must stop. A zero Budget never stops.
func (b Budget) Done(step int64, elapsed time.Duration) bool {
	return (b.Steps > 0 && step >= b.Steps) || (b.Duration > 0 && elapsed >= b.Duration)
}
