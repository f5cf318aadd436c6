package web_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/internal/chittest"
	"github.com/chitdev/chit/oauth"
)

// Single use under concurrent replay (SPEC §5.3): of many simultaneous
// presentations of one credential, exactly one wins, also across replicas.

// race runs n requests at once (released together) and returns their answers.
func race(n int, send func(i int) *chittest.Response) []*chittest.Response {
	out := make([]*chittest.Response, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i] = send(i)
		}()
	}
	close(start)
	wg.Wait()
	return out
}

// postForm sends an OAuth form to target from a goroutine.
func postForm(env *chittest.Env, target string, form url.Values) func(int) *chittest.Response {
	body := []byte(form.Encode())
	return func(int) *chittest.Response {
		return post(env.HTTP, target, "application/x-www-form-urlencoded", body)
	}
}

// winners splits answers into the successes and the rest, failing on any
// answer that is neither ok nor the expected refusal.
func winners(t *testing.T, answers []*chittest.Response, ok, refused int) (won, lost []*chittest.Response) {
	t.Helper()
	for _, r := range answers {
		switch r.Status {
		case ok:
			won = append(won, r)
		case refused:
			lost = append(lost, r)
		default:
			require.Failf(t, "unexpected answer", "%d %s", r.Status, r.Body)
		}
	}
	return won, lost
}

// agentTokens counts the agent's tokens, and those still live.
func agentTokens(t *testing.T, tn *chittest.Tenant, agent uuid.UUID) (all, live, exchanges int) {
	t.Helper()
	err := tn.Env.DB.InTenantTx(context.Background(), tn.T.ID, func(tx pgx.Tx) error {
		return tx.QueryRow(context.Background(), `SELECT
			(SELECT count(*) FROM tokens WHERE agent_id = $1), (SELECT count(*) FROM tokens WHERE agent_id = $1 AND revoked_at IS NULL),
			(SELECT exchanges FROM agents WHERE id = $1)`, agent).Scan(&all, &live, &exchanges)
	})
	require.NoError(t, err)
	return all, live, exchanges
}

func TestConcurrentFirstExchangesOneAssertion(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	assertion := w.agent.Assertion()

	answers := race(20, postForm(w.env, w.tn.TokenURL, firstExchange(assertion)))
	won, lost := winners(t, answers, http.StatusOK, http.StatusBadRequest)
	require.Len(t, won, 1, "exactly one exchange wins the assertion")
	for _, r := range lost {
		id := requireOAuthError(t, r, http.StatusBadRequest, oauth.ErrInvalidRequest, assertion)
		requireTrace(t, w.tn, w.orch, id, oauth.CheckReplay, assertion)
	}
	tok := accessTokenOf(t, won[0])
	requireActive(t, w.tn, true, tok)
	all, live, exchanges := agentTokens(t, w.tn, w.agent.ID)
	require.Equal(t, []int{1, 1, 1}, []int{all, live, exchanges}, "one token issued, one exchange counted")
}

func TestConcurrentRenewalsOneToken(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	current := w.agent.Exchange("")

	// Ten renewals of the same token, each with its own fresh assertion.
	forms := make([][]byte, 10)
	for i := range forms {
		forms[i] = []byte(renewal(current, w.agent.Assertion(), "").Encode())
	}
	answers := race(len(forms), func(i int) *chittest.Response {
		return post(w.env.HTTP, w.tn.TokenURL, "application/x-www-form-urlencoded", forms[i])
	})
	won, lost := winners(t, answers, http.StatusOK, http.StatusBadRequest)
	require.Len(t, won, 1, "exactly one renewal of a token succeeds")
	for _, r := range lost {
		id := requireOAuthError(t, r, http.StatusBadRequest, oauth.ErrInvalidRequest, current)
		requireTrace(t, w.tn, w.orch, id, oauth.CheckRevoked)
	}
	renewed := accessTokenOf(t, won[0])
	requireActive(t, w.tn, false, current)
	requireActive(t, w.tn, true, renewed)
	all, live, exchanges := agentTokens(t, w.tn, w.agent.ID)
	require.Equal(t, []int{2, 1, 2}, []int{all, live, exchanges}, "exactly one new token, and it is the only live one")
}

func TestConcurrentClientCredentialsOneAssertion(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	orch := w.tn.Orchestrator
	assertion := chittest.Assertion(orch.Key, orch.ID, w.tn.TokenURL, time.Minute)
	before := snapshot(t, w.tn)

	answers := race(20, postForm(w.env, w.tn.TokenURL, clientCredentials(w.tn, assertion)))
	won, lost := winners(t, answers, http.StatusOK, http.StatusUnauthorized)
	require.Len(t, won, 1, "exactly one client_credentials request wins the assertion")
	tok := accessTokenOf(t, won[0])
	for _, r := range lost {
		id := requireOAuthError(t, r, http.StatusUnauthorized, oauth.ErrInvalidClient, assertion)
		requireTrace(t, w.tn, tok, id, oauth.CheckReplay, assertion) // the refused client reads it
	}
	after := snapshot(t, w.tn)
	require.Equal(t, before.Tokens+1, after.Tokens)
}

// Two replicas on one database. chittest.StartOn gives the second replica
// an issuer of its own, so each assertion names both token endpoints in
// its `aud`: valid at either replica, usable at one only.
func TestReplicasShareSingleUse(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	replica := chittest.StartOn(t, w.env.DB)
	tokenURLs := []string{w.tn.TokenURL, replica.URL + "/t/" + w.tn.T.Slug.String() + "/oauth2/token"}
	issuers := []string{w.tn.Issuer, replica.URL + "/t/" + w.tn.T.Slug.String()}
	bothAud := func(key ed25519.PrivateKey, sub string) string {
		now := time.Now()
		return chittest.SignJWT(key, map[string]any{"iss": sub, "sub": sub, "aud": tokenURLs, "jti": uuid.NewString(),
			"iat": now.Unix(), "exp": now.Add(30 * time.Second).Unix()})
	}
	const rounds = 8

	// Agent assertions: with the cap far away, every round issues exactly one token.
	for range rounds {
		form := firstExchange(bothAud(w.agent.Key, w.agent.SPIFFEID))
		answers := race(2, func(i int) *chittest.Response {
			return post(w.env.HTTP, tokenURLs[i], "application/x-www-form-urlencoded", []byte(form.Encode()))
		})
		won, lost := winners(t, answers, http.StatusOK, http.StatusBadRequest)
		require.Len(t, won, 1, "exactly one replica wins the agent assertion")
		id := requireOAuthError(t, lost[0], http.StatusBadRequest, oauth.ErrInvalidRequest)
		requireTrace(t, w.tn, w.orch, id, oauth.CheckReplay)
	}
	all, _, exchanges := agentTokens(t, w.tn, w.agent.ID)
	require.Equal(t, rounds, all)
	require.Equal(t, rounds, exchanges)

	// Client assertions.
	orch := w.tn.Orchestrator
	for range rounds {
		form := clientCredentials(w.tn, bothAud(orch.Key, orch.ID))
		answers := race(2, func(i int) *chittest.Response {
			return post(w.env.HTTP, tokenURLs[i], "application/x-www-form-urlencoded", []byte(form.Encode()))
		})
		won, lost := winners(t, answers, http.StatusOK, http.StatusUnauthorized)
		require.Len(t, won, 1, "exactly one replica wins the client assertion")
		id := requireOAuthError(t, lost[0], http.StatusUnauthorized, oauth.ErrInvalidClient)
		requireTrace(t, w.tn, w.orch, id, oauth.CheckReplay)
	}

	// Launch tokens.
	for range rounds {
		launch := w.tn.LaunchToken(w.orch, w.task, "")
		answers := race(2, func(i int) *chittest.Response {
			pub, _, _ := ed25519.GenerateKey(rand.Reader)
			body, _ := json.Marshal(map[string]any{"launch_token": launch, "public_key": chittest.PublicJWK(pub)})
			return post(w.env.HTTP, issuers[i]+"/v1/agents/challenge", "application/json", body)
		})
		won, lost := winners(t, answers, http.StatusCreated, http.StatusConflict)
		require.Len(t, won, 1, "exactly one replica wins the launch token")
		id := requireRefusal(t, lost[0], http.StatusConflict, launch)
		requireTrace(t, w.tn, w.orch, id, oauth.CheckReplay)
	}
}
