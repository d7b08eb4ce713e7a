package q

// saved is a critic read from a file, awaiting its key's first sight.
type saved struct {
	layout Layout
	critic Critic
}
