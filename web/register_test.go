package web_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/oauth"
)

// A signature by another key than the one presented is refused, creates no
// agent, and burns the challenge: even the right signature afterwards is a
// replay. The agent exists only with a verified key.
func TestWrongSignatureBurnsTheChallengeAndRegistersNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	launch := w.tn.LaunchToken(w.orch, w.task, "tickets:read")
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	resp := w.tn.Challenge(launch, pub)
	require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
	var ch challengeAnswer
	resp.JSON(t, &ch)

	before := snapshot(t, w.tn)
	bad := w.tn.RegisterWith(ch.ChallengeID, ch.Nonce, other)
	id := requireRefusal(t, bad, http.StatusUnauthorized, launch)
	trace := requireTrace(t, w.tn, w.orch, id, oauth.CheckSignature)
	require.Equal(t, w.task.String(), trace["task_id"])
	require.Equal(t, before.Agents, snapshot(t, w.tn).Agents, "no agent without a verified key")

	again := w.tn.RegisterWith(ch.ChallengeID, ch.Nonce, priv)
	id = requireRefusal(t, again, http.StatusConflict, launch)
	requireStored(t, w.tn, id, oauth.CheckReplay)
	require.Equal(t, before.Agents, snapshot(t, w.tn).Agents)
}

// Of concurrent registrations on one challenge, exactly one makes an agent.
func TestConcurrentRegistrationsOneChallenge(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	launch := w.tn.LaunchToken(w.orch, w.task, "")
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	resp := w.tn.Challenge(launch, pub)
	require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
	var ch challengeAnswer
	resp.JSON(t, &ch)
	before := snapshot(t, w.tn)

	nonce, err := base64.RawURLEncoding.DecodeString(ch.Nonce)
	require.NoError(t, err)
	body, err := json.Marshal(map[string]any{"challenge_id": ch.ChallengeID,
		"signature": base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, nonce))})
	require.NoError(t, err)

	const n = 16
	statuses := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			statuses[i] = post(w.env.HTTP, w.tn.Issuer+"/v1/agents/register", "application/json", body).Status
		})
	}
	close(start)
	wg.Wait()
	created := 0
	for _, s := range statuses {
		switch s {
		case http.StatusCreated:
			created++
		case http.StatusConflict:
		default:
			t.Fatalf("unexpected status %d", s)
		}
	}
	require.Equal(t, 1, created)
	require.Equal(t, before.Agents+1, snapshot(t, w.tn).Agents)
}
