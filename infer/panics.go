package infer

import (
	"bytes"
	"fmt"
	"runtime/debug"
)

// UserPanic is the value [SVI.Step] panics with when the objective (a
// model, a guide, an estimator's code) panicked with anything but a
// library error: the original value, and the stack of the goroutine that
// panicked, starting at the frame that panicked. A chunk may run on
// another goroutine than Step's caller; re-panicking there would show
// only the training loop's frames, so the stack travels with the value.
type UserPanic struct {
	// Value is what the objective panicked with.
	Value any
	// Stack is the panicking goroutine's stack in the format of
	// runtime/debug.Stack, from the goroutine header and the frame that
	// panicked (the runtime's and the recovery's frames are cut).
	Stack []byte
}

// Error returns the original value followed by the stack, so that a
// crash shows the user's line first.
func (p *UserPanic) Error() string { return fmt.Sprintf("%v\n\n%s", p.Value, p.Stack) }

// Unwrap returns the original value when it is an error (a runtime error,
// say), nil otherwise.
func (p *UserPanic) Unwrap() error {
	err, _ := p.Value.(error)
	return err
}

// capturePanic returns the *UserPanic of p, to be called in the deferred
// function that recovered p, while the panicking frames are still on the
// stack. A p that already is one is returned as it is.
func capturePanic(p any) *UserPanic {
	if up, ok := p.(*UserPanic); ok {
		return up
	}
	return &UserPanic{Value: p, Stack: panicStack(debug.Stack())}
}

// panicStack cuts stack, a goroutine's stack as runtime/debug.Stack
// formats it while a panic is being recovered, to the goroutine header
// and the frames below the first panic: the frames above it (the
// recovery, further panics in deferred calls) and the runtime's frames
// right below it (runtime.goPanicIndex and the like) are not the user's.
func panicStack(stack []byte) []byte {
	lines := bytes.Split(stack, []byte("\n"))
	if len(lines) < 2 {
		return stack
	}
	last := -1
	for i, l := range lines {
		if bytes.HasPrefix(l, []byte("panic(")) {
			last = i
		}
	}
	if last < 0 {
		return stack
	}
	// Each frame is a function line and a file line.
	i := last + 2
	for i+1 < len(lines) && bytes.HasPrefix(lines[i], []byte("runtime.")) {
		i += 2
	}
	out := append([][]byte{lines[0]}, lines[i:]...)
	return bytes.Join(out, []byte("\n"))
}
