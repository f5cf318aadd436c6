package oauth

import (
	"slices"
	"strings"

	"github.com/chitdev/chit/internal/fault"
)

// Scope is a set of OAuth scope tokens (RFC 6749 §3.3), kept sorted and
// without duplicates so equal sets compare equal. The zero value is empty.
type Scope struct {
	tokens []string
}

// MaxScopeTokens bounds a scope so a request cannot make chit do unbounded work.
const MaxScopeTokens = 64

// ParseScope parses a space-separated scope string. Each token must be
// printable ASCII without `"` or `\` (RFC 6749 §3.3) and at most 128 bytes.
func ParseScope(s string) (Scope, error) {
	fields := strings.Split(s, " ")
	tokens := make([]string, 0, len(fields))
	for _, f := range fields {
		if f == "" {
			continue // tolerate repeated spaces
		}
		if err := checkScopeToken(f); err != nil {
			return Scope{}, err
		}
		tokens = append(tokens, f)
	}
	if len(tokens) > MaxScopeTokens {
		return Scope{}, fault.InvalidField("scope", "has more than %d tokens", MaxScopeTokens)
	}
	return NewScope(tokens...), nil
}

func checkScopeToken(tok string) error {
	if len(tok) > 128 {
		return fault.InvalidField("scope", "a scope token is longer than 128 bytes")
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return fault.InvalidField("scope", "scope tokens are printable ASCII without quotes or backslashes")
		}
	}
	return nil
}

// NewScope builds a scope from tokens; callers have validated them.
func NewScope(tokens ...string) Scope {
	t := slices.Clone(tokens)
	slices.Sort(t)
	return Scope{tokens: slices.Compact(t)}
}

// String is the space-separated form used on the wire.
func (s Scope) String() string { return strings.Join(s.tokens, " ") }

// Tokens returns the scope's tokens, sorted.
func (s Scope) Tokens() []string { return slices.Clone(s.tokens) }

// Len is the number of tokens.
func (s Scope) Len() int { return len(s.tokens) }

// IsEmpty reports whether the scope has no token.
func (s Scope) IsEmpty() bool { return len(s.tokens) == 0 }

// Has reports whether tok is in the scope.
func (s Scope) Has(tok string) bool {
	_, ok := slices.BinarySearch(s.tokens, tok)
	return ok
}

// SubsetOf reports whether every token of s is in other.
func (s Scope) SubsetOf(other Scope) bool {
	for _, t := range s.tokens {
		if !other.Has(t) {
			return false
		}
	}
	return true
}

// Missing returns the tokens of s that other lacks, sorted.
func (s Scope) Missing(other Scope) []string {
	var out []string
	for _, t := range s.tokens {
		if !other.Has(t) {
			out = append(out, t)
		}
	}
	return out
}

// Attenuate returns the scope a holder of s gets when it asks for
// requested: requested itself when it is within s, or an error naming what
// exceeds s. An empty request keeps s. The result is never larger than s.
func (s Scope) Attenuate(requested Scope) (Scope, error) {
	if requested.IsEmpty() {
		return s, nil
	}
	if missing := requested.Missing(s); len(missing) > 0 {
		return Scope{}, fault.InvalidField("scope", "exceeds what is held: %s", strings.Join(missing, " "))
	}
	return requested, nil
}

// Equal reports whether both scopes hold the same tokens.
func (s Scope) Equal(other Scope) bool { return slices.Equal(s.tokens, other.tokens) }

// MatchPattern reports whether tok matches a grant pattern: equal, or a
// pattern ending in `*` whose prefix tok starts with (`tickets:*` covers
// `tickets:read` but not `ticketsx`).
func MatchPattern(pattern, tok string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(tok, prefix)
	}
	return pattern == tok
}
