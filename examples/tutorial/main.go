// Command tutorial fits three small models and prints each result beside
// the exact answer it is checked against:
//
//	go run ./examples/tutorial regression   # Bayesian linear regression, automatic guides, Predictive
//	go run ./examples/tutorial mixture      # Gaussian mixture, assignments summed out in the model, against EM
//	go run ./examples/tutorial hmm          # hidden Markov model, states summed out by the forward algorithm
//
// Each model is a file of this directory, written to be copied.
package main

import (
	"fmt"
	"io"
	"os"
)

// tutorials maps a subcommand to its program, which writes its report to
// w and trains for the given fraction of its full number of steps.
var tutorials = map[string]func(w io.Writer, effort float64) error{
	"regression": regression,
	"mixture":    mixture,
	"hmm":        hmm,
}

func main() {
	if len(os.Args) != 2 || tutorials[os.Args[1]] == nil {
		fmt.Fprintln(os.Stderr, "usage: tutorial regression|mixture|hmm")
		os.Exit(2)
	}
	if err := tutorials[os.Args[1]](os.Stdout, 1); err != nil {
		fmt.Fprintln(os.Stderr, "tutorial:", err)
		os.Exit(1)
	}
}

// steps returns n scaled by effort, at least 1.
func steps(n int, effort float64) int { return max(1, int(float64(n)*effort)) }
