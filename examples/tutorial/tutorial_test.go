package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestTutorials runs each tutorial (with a tenth of its steps under
// -short) and checks that it reports every line.
func TestTutorials(t *testing.T) {
	effort := 1.0
	if testing.Short() {
		effort = 0.1
	}
	lines := map[string]int{"regression": 8, "mixture": 6, "hmm": 5}
	for name, run := range tutorials {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			if err := run(&out, effort); err != nil {
				t.Fatal(err)
			}
			if got := strings.Count(out.String(), "\n"); got != lines[name] {
				t.Errorf("%d lines, want %d:\n%s", got, lines[name], out.String())
			}
		})
	}
}
