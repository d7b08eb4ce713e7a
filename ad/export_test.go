package ad

// SetPoison makes every buffer the tapes hand out start as NaN until the
// returned function restores the default.
func SetPoison() (restore func()) {
	poison = true
	return func() { poison = false }
}
