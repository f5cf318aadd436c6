package oauth

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseScope(t *testing.T) {
	t.Parallel()
	s, err := ParseScope("tickets:write  tickets:read tickets:read")
	require.NoError(t, err)
	require.Equal(t, "tickets:read tickets:write", s.String())
	require.Equal(t, 2, s.Len())

	empty, err := ParseScope("")
	require.NoError(t, err)
	require.True(t, empty.IsEmpty())

	for _, bad := range []string{"a\"b", "a\\b", "caf\u00e9", "tab\there", "nl\n"} {
		_, err := ParseScope(bad)
		require.Error(t, err, "%q", bad)
	}
	long := make([]byte, 129)
	for i := range long {
		long[i] = 'a'
	}
	_, err = ParseScope(string(long))
	require.Error(t, err)
}

func TestAttenuateNeverGrows(t *testing.T) {
	t.Parallel()
	held := NewScope("tickets:read", "tickets:write", "kb:read")

	got, err := held.Attenuate(NewScope("tickets:read"))
	require.NoError(t, err)
	require.Equal(t, "tickets:read", got.String())

	got, err = held.Attenuate(Scope{})
	require.NoError(t, err)
	require.True(t, got.Equal(held), "an empty request keeps what is held")

	_, err = held.Attenuate(NewScope("tickets:read", "admin"))
	require.ErrorContains(t, err, "admin")

	// Property: whatever is asked, the result is a subset of what is held.
	universe := []string{"a", "b", "c", "d", "e", "f", "tickets:read", "tickets:write", "kb:read"}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		pick := func() Scope {
			var toks []string
			for _, u := range universe {
				if r.IntN(2) == 0 {
					toks = append(toks, u)
				}
			}
			return NewScope(toks...)
		}
		h, req := pick(), pick()
		out, err := h.Attenuate(req)
		if err != nil {
			require.False(t, req.SubsetOf(h))
			continue
		}
		require.True(t, out.SubsetOf(h), "held %q, asked %q, got %q", h, req, out)
		// Chained attenuation never grows either.
		out2, err := out.Attenuate(pick())
		if err == nil {
			require.True(t, out2.SubsetOf(h))
		}
	}
}

func TestMatchPattern(t *testing.T) {
	t.Parallel()
	require.True(t, MatchPattern("tickets:*", "tickets:read"))
	require.True(t, MatchPattern("tickets:*", "tickets:read:own"))
	require.False(t, MatchPattern("tickets:*", "ticketsx"))
	require.False(t, MatchPattern("tickets:*", "tickets"))
	require.True(t, MatchPattern("tickets:read", "tickets:read"))
	require.False(t, MatchPattern("tickets:read", "tickets:readx"))
	require.True(t, MatchPattern("*", "anything"))
}

func TestBearerToken(t *testing.T) {
	t.Parallel()
	for header, want := range map[string]string{"Bearer abc": "abc", "bearer abc": "abc", "BEARER  abc ": "abc"} {
		got, ok := BearerToken(header)
		require.True(t, ok, header)
		require.Equal(t, want, got)
	}
	for _, header := range []string{"", "Bearer", "Bearer ", "Basic abc", "Bearerabc", "DPoP abc"} {
		_, ok := BearerToken(header)
		require.False(t, ok, header)
	}
}
