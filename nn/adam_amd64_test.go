//go:build amd64 && !purego

package nn

import "testing"

// TestAdam4WideMatchesScalar checks the 4-wide kernel on CPUs where the
// 8-wide one would run in its place.
func TestAdam4WideMatchesScalar(t *testing.T) {
	if !haveAdam512 {
		t.Skip("no AVX-512: TestAdamUpdateMatchesScalar checks the 4-wide kernel")
	}
	defer func() { haveAdam512 = true }()
	haveAdam512 = false
	checkAdamMatchesScalar(t)
}
