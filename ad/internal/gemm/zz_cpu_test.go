package gemm

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"
)

func threadCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(1, &ru) // RUSAGE_THREAD
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestZZCPU(t *testing.T) {
	if os.Getenv("ZZCPU") == "" {
		t.Skip()
	}
	runtime.LockOSThread()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range [][3]int{{24, 784, 200}, {50, 784, 200}, {100, 784, 200}, {100, 200, 784}, {512, 512, 512}} {
		type pr struct {
			name    string
			m, n, k int
			ta, tb  bool
		}
		for _, p := range []pr{{"NN", s[0], s[2], s[1], false, false}, {"NT", s[0], s[1], s[2], false, true}, {"TN", s[1], s[2], s[0], true, false}} {
			tc := newTestCase(rng, p.m, p.n, p.k, p.ta, p.tb, 0)
			best := 0.0
			for rep := 0; rep < 5; rep++ {
				n := 0
				c0 := threadCPU()
				for threadCPU()-c0 < 40*time.Millisecond {
					runParts(tc.product, 1, true)
					n++
				}
				el := threadCPU() - c0
				best = max(best, 2*float64(p.m*p.n*p.k)*float64(n)/el.Seconds()/1e9)
			}
			fmt.Printf("%v %s %.1f GFLOP/s (cpu time, best of 5)\n", s, p.name, best)
		}
	}
}
