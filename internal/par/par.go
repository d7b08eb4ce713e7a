// Package par runs work cut into parts on the calling goroutine and on a
// fixed set of helper goroutines, one per core beyond the first, without
// allocating: the parallel loops of packages ad (matrix products, costly
// elementwise functions) and nn (the optimizers' updates) share these
// helpers.
//
// A helper joins a run only if it is idle at that moment; otherwise the
// caller does the parts itself. Which goroutine runs a part must not change
// its result: callers cut their work so that each part's numbers depend on
// the part alone.
package par

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// A Task is work cut into parts.
type Task interface {
	// Part runs part p of parts. worker is 0 on the calling goroutine and
	// 1 to [Workers]-1 on the helpers, so a task may keep scratch memory
	// per worker; no two parts run on one worker at once.
	Part(p, parts, worker int)
}

// run is one call of [Do]: the parts are claimed from next.
type run struct {
	task  Task
	parts int
	next  atomic.Int64
	done  chan struct{}
}

var (
	// freeRuns holds runs for reuse. It is a channel rather than a
	// sync.Pool, which drops items at random under the race detector and
	// would make steady-state steps allocate there.
	freeRuns = make(chan *run, 8)

	helpersOnce sync.Once
	helpers     chan *run
	numHelpers  int
)

// Workers returns the number of goroutines that may run parts at once: the
// caller and the helpers, one per core beyond the first as GOMAXPROCS was
// at the first call.
func Workers() int {
	helpersOnce.Do(func() {
		numHelpers = runtime.GOMAXPROCS(0) - 1
		helpers = make(chan *run)
		for id := range numHelpers {
			go helper(id + 1)
		}
	})
	return numHelpers + 1
}

func helper(worker int) {
	for r := range helpers {
		r.work(worker)
		r.done <- struct{}{}
	}
}

// Do runs parts 0 to parts-1 of t and returns when all are done. The
// calling goroutine runs parts too, so Do makes progress when every
// helper is busy.
func Do(t Task, parts int) {
	if parts <= 1 || Workers() == 1 || runtime.GOMAXPROCS(0) == 1 {
		for p := range parts {
			t.Part(p, parts, 0)
		}
		return
	}
	var r *run
	select {
	case r = <-freeRuns:
	default:
		r = &run{done: make(chan struct{}, numHelpers)}
	}
	r.task, r.parts = t, parts
	r.next.Store(0)
	joined := 0
	for joined < parts-1 && joined < numHelpers {
		select {
		case helpers <- r: // a helper was waiting
			joined++
			continue
		default:
		}
		break
	}
	r.work(0)
	for range joined {
		<-r.done
	}
	r.task = nil
	select {
	case freeRuns <- r:
	default:
	}
}

// work runs parts until none is left.
func (r *run) work(worker int) {
	for {
		p := int(r.next.Add(1)) - 1
		if p >= r.parts {
			return
		}
		r.task.Part(p, r.parts, worker)
	}
}

// Range returns part p of parts of [0, n), cut at multiples of step (the
// last part ends at n).
func Range(p, parts, n, step int) (lo, hi int) {
	steps := (n + step - 1) / step
	lo = p * steps / parts * step
	hi = min((p+1)*steps/parts*step, n)
	return lo, hi
}
