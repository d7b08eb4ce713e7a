package par

import (
	"sync/atomic"
	"testing"
)

// countTask records which parts ran and on which workers.
type countTask struct {
	ran     []atomic.Int32
	workers []atomic.Int32
	busy    []atomic.Int32
	overlap atomic.Bool
}

func (c *countTask) Part(p, parts, worker int) {
	if c.busy[worker].Add(1) != 1 {
		c.overlap.Store(true)
	}
	c.ran[p].Add(1)
	c.workers[worker].Add(1)
	c.busy[worker].Add(-1)
}

func TestDoRunsEachPartOnce(t *testing.T) {
	for _, parts := range []int{0, 1, 2, 3, 17} {
		for range 50 {
			c := &countTask{ran: make([]atomic.Int32, parts), workers: make([]atomic.Int32, Workers()), busy: make([]atomic.Int32, Workers())}
			Do(c, parts)
			for p := range parts {
				if n := c.ran[p].Load(); n != 1 {
					t.Fatalf("parts=%d: part %d ran %d times", parts, p, n)
				}
			}
			if c.overlap.Load() {
				t.Fatalf("parts=%d: two parts ran on one worker at once", parts)
			}
		}
	}
}

func TestDoConcurrentCallers(t *testing.T) {
	done := make(chan bool)
	for range 4 {
		go func() {
			ok := true
			for range 200 {
				c := &countTask{ran: make([]atomic.Int32, 5), workers: make([]atomic.Int32, Workers()), busy: make([]atomic.Int32, Workers())}
				Do(c, 5)
				for p := range 5 {
					ok = ok && c.ran[p].Load() == 1
				}
			}
			done <- ok
		}()
	}
	for range 4 {
		if !<-done {
			t.Fatal("a part did not run exactly once")
		}
	}
}

func TestRange(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 9, 100} {
		for _, parts := range []int{1, 2, 3, 5} {
			next := 0
			for p := range parts {
				lo, hi := Range(p, parts, n, 4)
				if lo != next || hi < lo || (lo%4 != 0 && lo != n) {
					t.Fatalf("n=%d parts=%d: part %d is [%d, %d) after %d", n, parts, p, lo, hi, next)
				}
				next = hi
			}
			if next != n {
				t.Fatalf("n=%d parts=%d: parts end at %d", n, parts, next)
			}
		}
	}
}
