// Command chit-load drives a running chit server the way a fleet does:
// orchestrators mint launch tokens, agents register, exchange, renew and
// delegate, resource servers introspect. It prints throughput and latency
// percentiles per operation at several concurrency levels.
//
// It sets up its own tenant through the database (DATABASE_URL and
// CHIT_KEK_FILE, the server's), then talks to the server over HTTP only.
package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"

	"github.com/chitdev/chit/internal/clock"
	"github.com/chitdev/chit/internal/pgstore"
	"github.com/chitdev/chit/oauth"
	"github.com/chitdev/chit/tenants"
	"github.com/chitdev/chit/tenants/keyring"
	"github.com/chitdev/chit/tenants/policy"
)

func main() {
	base := flag.String("base-url", "http://127.0.0.1:8080", "the running server")
	levels := flag.String("clients", "1,8,32", "concurrency levels")
	dur := flag.Duration("duration", 5*time.Second, "how long each operation runs at each level")
	ops := flag.String("ops", "register,exchange,renewal,delegation,introspection", "operations to run")
	flag.Parse()
	if err := run(context.Background(), *base, *levels, *ops, *dur); err != nil {
		fmt.Fprintln(os.Stderr, "chit-load:", err)
		os.Exit(1)
	}
}

type client struct {
	id  string
	key ed25519.PrivateKey
}

type agent struct {
	id, spiffe string
	key        ed25519.PrivateKey
	token      string
}

type bench struct {
	issuer, tokenURL string
	http             *http.Client
	orch             client
	orchToken        string
	rsToken          string
	task             string
}

func run(ctx context.Context, base, levelList, opList string, dur time.Duration) error {
	var levels []int
	for _, f := range strings.Split(levelList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("--clients: %q is not a positive number", f)
		}
		levels = append(levels, n)
	}
	b, err := setup(ctx, base)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	fmt.Printf("chit-load against %s, %s per operation and level\n\n", base, dur)
	fmt.Printf("%-14s %7s %10s %8s %8s %8s %7s\n", "operation", "clients", "ops/s", "p50 ms", "p95 ms", "p99 ms", "errors")
	for _, op := range []struct {
		name    string
		prepare func(n int) (func(worker int) error, error)
	}{
		{"register", b.prepareRegister(dur)},
		{"exchange", b.prepareAgents(func(a *agent) error { return b.exchange(a) })},
		{"renewal", b.prepareAgents(func(a *agent) error { return b.renew(a) })},
		{"delegation", b.prepareAgents(func(a *agent) error { return b.delegate(a) })},
		{"introspection", b.prepareAgents(func(a *agent) error { return b.introspect(a) })},
	} {
		if !slices.Contains(strings.Split(opList, ","), op.name) {
			continue
		}
		for _, n := range levels {
			fn, err := op.prepare(n)
			if err != nil {
				return fmt.Errorf("%s: %w", op.name, err)
			}
			r := measure(n, dur, fn)
			fmt.Printf("%-14s %7d %10.0f %8.2f %8.2f %8.2f %7d\n", op.name, n, r.rate, r.p(50), r.p(95), r.p(99), r.errors)
			if r.firstErr != nil {
				fmt.Printf("  first error: %v\n", r.firstErr)
			}
		}
	}
	return nil
}

// setup creates a tenant for this run with an orchestrator and a resource
// server, and grants the orchestrator what the run needs.
func setup(ctx context.Context, base string) (*bench, error) {
	kek, err := keyring.LoadKEK(os.Getenv("CHIT_KEK_FILE"))
	if err != nil {
		return nil, err
	}
	db, err := pgstore.Open(ctx, os.Getenv("DATABASE_URL"), pgstore.Options{MaxConns: 4})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	keys := keyring.New(db, kek, clock.System)
	ts := tenants.NewService(db, keys, clock.System)
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	slug := "bench-" + hex.EncodeToString(suffix)
	settings := tenants.DefaultSettings()
	settings.MaxRenewals = tenants.MaxMaxRenewals
	settings.TokenTTL = tenants.MaxTokenTTL
	t, err := ts.Create(ctx, tenants.CreateParams{Slug: slug, TrustDomain: slug + ".bench.local", Settings: &settings})
	if err != nil {
		return nil, err
	}
	o := oauth.NewService(oauth.Config{DB: db, Keys: keys, Clock: clock.System})
	b := &bench{issuer: strings.TrimRight(base, "/") + "/t/" + slug,
		http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}}}
	b.tokenURL = b.issuer + oauth.PathToken
	newClient := func(kind oauth.ClientKind) (client, error) {
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		c, err := o.CreateClient(ctx, t, kind, "chit-load "+string(kind), pub, "chit-load")
		if err != nil {
			return client{}, err
		}
		return client{id: c.ID, key: priv}, nil
	}
	if b.orch, err = newClient(oauth.KindOrchestrator); err != nil {
		return nil, err
	}
	rs, err := newClient(oauth.KindResourceServer)
	if err != nil {
		return nil, err
	}
	gov, err := policy.New(ctx, db, clock.System, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	defer gov.Close()
	if err := gov.Grant(ctx, t.ID, b.orch.id, []string{"bench:*"}, []string{"https://api.bench.example"}, "chit-load"); err != nil {
		return nil, err
	}
	if b.orchToken, err = b.clientToken(b.orch); err != nil {
		return nil, err
	}
	if b.rsToken, err = b.clientToken(rs); err != nil {
		return nil, err
	}
	// The server learns of the grant by notification; retry until it has.
	for i := 0; ; i++ {
		var out struct {
			TaskID string `json:"task_id"`
		}
		err := b.postJSON("/v1/tasks", b.orchToken, map[string]any{"principal": "user:bench", "purpose": "load",
			"scope": "bench:read bench:write", "audiences": []string{"https://api.bench.example"}, "ttl_seconds": 3600}, http.StatusCreated, &out)
		if err == nil {
			b.task = out.TaskID
			return b, nil
		}
		if i == 50 {
			return nil, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// prepareRegister mints enough launch tokens outside the timed run.
func (b *bench) prepareRegister(dur time.Duration) func(int) (func(int) error, error) {
	return func(n int) (func(int) error, error) {
		need := int(dur.Seconds()*2500) + 200
		launch := make(chan string, need)
		errs := parallel(32, need, func() error {
			var lt struct {
				LaunchToken string `json:"launch_token"`
			}
			if err := b.postJSON("/v1/tasks/"+b.task+"/launch-tokens", b.orchToken, nil, http.StatusCreated, &lt); err != nil {
				return err
			}
			launch <- lt.LaunchToken
			return nil
		})
		if errs != nil {
			return nil, errs
		}
		close(launch)
		return func(int) error {
			lt, ok := <-launch
			if !ok {
				return fmt.Errorf("out of launch tokens")
			}
			_, err := b.register(lt)
			return err
		}, nil
	}
}

// prepareAgents gives each worker its own registered agent with a token.
func (b *bench) prepareAgents(op func(*agent) error) func(int) (func(int) error, error) {
	return func(n int) (func(int) error, error) {
		agents := make([]*agent, n)
		for i := range agents {
			var lt struct {
				LaunchToken string `json:"launch_token"`
			}
			if err := b.postJSON("/v1/tasks/"+b.task+"/launch-tokens", b.orchToken, nil, http.StatusCreated, &lt); err != nil {
				return nil, err
			}
			a, err := b.register(lt.LaunchToken)
			if err != nil {
				return nil, err
			}
			if err := b.exchange(a); err != nil {
				return nil, err
			}
			agents[i] = a
		}
		return func(w int) error { return op(agents[w]) }, nil
	}
}

func (b *bench) register(launch string) (*agent, error) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	jwk, _ := jose.JSONWebKey{Key: pub}.MarshalJSON()
	var ch struct {
		ChallengeID string `json:"challenge_id"`
		Nonce       string `json:"nonce"`
	}
	if err := b.postJSON("/v1/agents/challenge", "", map[string]any{"launch_token": launch, "public_key": json.RawMessage(jwk)},
		http.StatusCreated, &ch); err != nil {
		return nil, err
	}
	nonce, err := base64.RawURLEncoding.DecodeString(ch.Nonce)
	if err != nil {
		return nil, err
	}
	var reg struct {
		AgentID  string `json:"agent_id"`
		SPIFFEID string `json:"spiffe_id"`
	}
	if err := b.postJSON("/v1/agents/register", "", map[string]any{"challenge_id": ch.ChallengeID,
		"signature": base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, nonce))}, http.StatusCreated, &reg); err != nil {
		return nil, err
	}
	return &agent{id: reg.AgentID, spiffe: reg.SPIFFEID, key: priv}, nil
}

func (b *bench) exchange(a *agent) error {
	return b.token(a, url.Values{"grant_type": {oauth.GrantTokenExchange}, "subject_token": {b.assertion(a.key, a.spiffe, 30*time.Second)},
		"subject_token_type": {oauth.TokenTypeJWT}, "scope": {"bench:read bench:write"}})
}

func (b *bench) renew(a *agent) error {
	return b.token(a, url.Values{"grant_type": {oauth.GrantTokenExchange}, "subject_token": {a.token},
		"subject_token_type": {oauth.TokenTypeAccessToken}, "actor_token": {b.assertion(a.key, a.spiffe, 30*time.Second)},
		"actor_token_type": {oauth.TokenTypeJWT}})
}

func (b *bench) delegate(a *agent) error {
	return b.postJSON("/v1/agents/"+a.id+"/launch-tokens", a.token, map[string]string{"scope": "bench:read"}, http.StatusCreated, nil)
}

func (b *bench) introspect(a *agent) error {
	var out struct {
		Active bool `json:"active"`
	}
	if err := b.post(oauth.PathIntrospect, "application/x-www-form-urlencoded", b.rsToken,
		[]byte(url.Values{"token": {a.token}}.Encode()), http.StatusOK, &out); err != nil {
		return err
	}
	if !out.Active {
		return fmt.Errorf("a live token introspected inactive")
	}
	return nil
}

func (b *bench) token(a *agent, form url.Values) error {
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := b.post(oauth.PathToken, "application/x-www-form-urlencoded", "", []byte(form.Encode()), http.StatusOK, &out); err != nil {
		return err
	}
	a.token = out.AccessToken
	return nil
}

func (b *bench) clientToken(c client) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {b.assertion(c.key, c.id, time.Minute)}}
	var out struct {
		AccessToken string `json:"access_token"`
	}
	err := b.post(oauth.PathToken, "application/x-www-form-urlencoded", "", []byte(form.Encode()), http.StatusOK, &out)
	return out.AccessToken, err
}

func (b *bench) assertion(key ed25519.PrivateKey, sub string, life time.Duration) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: key}, nil)
	if err != nil {
		panic(err)
	}
	now := time.Now()
	s, err := jwt.Signed(signer).Claims(jwt.Claims{Issuer: sub, Subject: sub, Audience: jwt.Audience{b.tokenURL},
		ID: uuid.NewString(), IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(life))}).Serialize()
	if err != nil {
		panic(err)
	}
	return s
}

func (b *bench) postJSON(path, bearer string, body any, want int, out any) error {
	var data []byte
	if body != nil {
		data, _ = json.Marshal(body)
	}
	return b.post(path, "application/json", bearer, data, want, out)
}

func (b *bench) post(path, contentType, bearer string, body []byte, want int, out any) error {
	req, err := http.NewRequest(http.MethodPost, b.issuer+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := b.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s: %d %s", path, resp.StatusCode, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

type result struct {
	rate      float64
	latencies []time.Duration
	errors    int
	firstErr  error
}

// p is a latency percentile in milliseconds.
func (r result) p(q int) float64 {
	if len(r.latencies) == 0 {
		return 0
	}
	i := (len(r.latencies)*q + 99) / 100
	return float64(r.latencies[max(i-1, 0)].Microseconds()) / 1000
}

// measure runs fn from n workers for dur and collects latencies.
func measure(n int, dur time.Duration, fn func(worker int) error) result {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var res result
	var failed atomic.Int64
	start := time.Now()
	deadline := start.Add(dur)
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			for time.Now().Before(deadline) {
				t0 := time.Now()
				if err := fn(w); err != nil {
					if failed.Add(1) == 1 {
						mu.Lock()
						res.firstErr = err
						mu.Unlock()
					}
					if failed.Load() > 1000 {
						break
					}
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			res.latencies = append(res.latencies, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(res.latencies)
	res.errors = int(failed.Load())
	res.rate = float64(len(res.latencies)) / elapsed.Seconds()
	return res
}

// parallel runs fn count times from workers goroutines; returns the first error.
func parallel(workers, count int, fn func() error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(count) {
				if err := fn(); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}
