package verify

import "sync"

// Cache remembers tokens whose signature and format verified, by their
// exact bytes, so a token seen before skips the Ed25519 verification.
// Only what the bytes alone decide is cached: callers still check expiry,
// audience, scopes and revocation on every use. Safe for concurrent use.
type Cache struct {
	mu   sync.RWMutex
	m    map[string]*Claims
	size int
}

// NewCache keeps at most size tokens.
func NewCache(size int) *Cache {
	if size <= 0 {
		size = 1
	}
	return &Cache{m: map[string]*Claims{}, size: size}
}

// Get is the claims of raw if it verified before, or nil. The claims are
// shared: do not modify them.
func (c *Cache) Get(raw string) *Claims {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[raw]
}

// Put remembers that raw verified with claims.
func (c *Cache) Put(raw string, claims *Claims) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.size {
		// Start over rather than track recency: a full cache means a flood of
		// new tokens, and tokens live minutes anyway.
		c.m = map[string]*Claims{}
	}
	c.m[raw] = claims
}

// Len is how many tokens are remembered.
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
