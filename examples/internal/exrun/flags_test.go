package exrun

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Checks keeps the first failure; Writable leaves nothing behind.
func TestChecks(t *testing.T) {
	dir := t.TempDir()
	var c Checks
	c.AtLeast("steps", 0, 0)
	c.Positive("lr", 0.1)
	c.Duration("duration", time.Second)
	c.Writable("save", filepath.Join(dir, "a.ckpt"))
	c.Readable("resume", "")
	require.NoError(t, c.Err())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries, "the probe file is removed")

	c.Writable("save", filepath.Join(dir, "missing", "a.ckpt"))
	c.AtLeast("steps", -1, 0)
	assert.ErrorContains(t, c.Err(), "-save "+filepath.Join(dir, "missing", "a.ckpt")+": cannot write there")

	for _, check := range []func(*Checks){
		func(c *Checks) { c.AtLeast("batch", 0, 1) },
		func(c *Checks) { c.Positive("lr", -1) },
		func(c *Checks) { c.Duration("duration", -time.Second) },
		func(c *Checks) { c.Readable("resume", filepath.Join(dir, "none")) },
		func(c *Checks) { c.Writable("save", dir) },
	} {
		var c Checks
		check(&c)
		assert.Error(t, c.Err())
	}
}
