package exrun

import (
	"sync"

	"github.com/backpropq/backpropq/vi"
)

// Chunks hands out the objective of each chunk of a batch's rows (the
// infer.SVI Chunk function), made once per chunk by Make: a model that
// reads its batch by closure from memory that every step refills needs
// no new objective each step. Chunks run concurrently may ask at once.
type Chunks struct {
	Make func(from, to int) vi.Objective

	mu   sync.Mutex
	made map[[2]int]vi.Objective
}

// Objective returns the objective of rows [from, to).
func (c *Chunks) Objective(from, to int) vi.Objective {
	c.mu.Lock()
	defer c.mu.Unlock()
	obj, ok := c.made[[2]int{from, to}]
	if !ok {
		obj = c.Make(from, to)
		if c.made == nil {
			c.made = map[[2]int]vi.Objective{}
		}
		c.made[[2]int{from, to}] = obj
	}
	return obj
}

// Reset forgets the objectives made, for a batch in other memory.
func (c *Chunks) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.made)
}
