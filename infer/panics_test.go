package infer

import (
	"errors"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/vi"
)

// badLine is the line of indexModel that panics.
var badLine int

// indexModel reads a row of its sample that does not exist.
func indexModel(ctx *ppl.Ctx) {
	b := ppl.Sample(ctx, "b", dist.BernoulliLogits(ctx.Tape().Zeros(ctx.Batch(), 1)))
	rows := b.Data()
	_, _, badLine, _ = runtime.Caller(0)
	ppl.Cost(ctx, "f", ad.Scale(b, rows[len(rows)])) // the user's bad index
}

func TestUserPanicKeepsTheUsersStack(t *testing.T) {
	for _, chunks := range []int{1, 2} {
		s := &SVI{Objective: vi.Program{Model: indexModel}, Estimators: Estimators{Default: ScoreFunction{}},
			Optimizer: nn.NewAdam(0.1), Params: nn.NewStore(), Particles: 4, Chunks: chunks, Workers: 2, Seed: 1}
		var p any
		func() {
			defer func() { p = recover() }()
			_, _ = s.Step()
		}()
		up, ok := p.(*UserPanic)
		require.True(t, ok, "panic value %T %v", p, p)
		var re runtime.Error
		assert.True(t, errors.As(up, &re))
		lines := strings.Split(string(up.Stack), "\n")
		require.Greater(t, len(lines), 2)
		assert.True(t, strings.HasPrefix(lines[0], "goroutine "), lines[0])
		assert.Contains(t, lines[1], "indexModel", "first frame: %s", lines[1])
		assert.Contains(t, lines[2], "panics_test.go:"+strconv.Itoa(badLine+1), "first frame's line: %s", lines[2])
		assert.Contains(t, up.Error(), "index out of range")
		assert.EqualValues(t, 0, s.StepCount())
	}
}
