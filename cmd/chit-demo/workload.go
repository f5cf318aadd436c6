package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// config is one run of the workload.
type config struct {
	BaseURL  string
	Tenant   string
	KeysDir  string
	Duration time.Duration // 0: until stopped
	Rate     float64       // new tasks per second
	// Step is an agent's think time between two actions (jittered ±50 %);
	// agents quiet for two steps heartbeat.
	Step time.Duration
	Out  io.Writer // one line per task
	Log  io.Writer // progress and errors
}

// defaultStep paces a task over ten to twenty seconds: slow enough to
// follow on the console, fast enough that it never looks idle.
const defaultStep = 1500 * time.Millisecond

// maxConsecutiveFailures ends the run: the server is gone or the set-up is broken.
const maxConsecutiveFailures = 5

// counts are what a run did, for the closing line and for tests.
type counts struct {
	Tasks, Completed, Revoked, Silent, Failed, Interrupted, Refusals int64
}

// driver plays tasks against one tenant of a running chit.
type driver struct {
	cfg   config
	api   *api
	orchs []*orchestratorRun

	outMu sync.Mutex

	tasks, completed, revoked, silent, failed, interrupted, refusals atomic.Int64
	consecutiveFailures                                              atomic.Int64
	lastFailure                                                      atomic.Value // string: the last failed task's error
}

// orchestratorRun is an orchestrator of the demo, authenticated, with the
// resource server that serves its agents' audience.
type orchestratorRun struct {
	spec     orchestratorSpec
	token    *bearer
	resource *bearer
}

// newDriver finds the tenant, loads the clients scripts/demo registered
// and authenticates each once, so a stale set-up shows before any task.
func newDriver(ctx context.Context, cfg config) (*driver, error) {
	a, err := dial(ctx, cfg.BaseURL, cfg.Tenant)
	if err != nil {
		return nil, err
	}
	d := &driver{cfg: cfg, api: a}
	resources := map[string]*bearer{}
	for _, spec := range resourceServers {
		c, err := loadClient(cfg.KeysDir, spec.Name)
		if err != nil {
			return nil, err
		}
		resources[spec.Name] = &bearer{api: a, client: c}
	}
	for _, spec := range orchestrators {
		c, err := loadClient(cfg.KeysDir, spec.Name)
		if err != nil {
			return nil, err
		}
		rs := resources[spec.Resource]
		if rs == nil {
			return nil, fmt.Errorf("orchestrator %s: no resource server %s", spec.Name, spec.Resource)
		}
		d.orchs = append(d.orchs, &orchestratorRun{spec: spec, token: &bearer{api: a, client: c}, resource: rs})
	}
	for _, b := range resources {
		if err := authenticate(ctx, b, cfg); err != nil {
			return nil, err
		}
	}
	for _, o := range d.orchs {
		if err := authenticate(ctx, o.token, cfg); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func authenticate(ctx context.Context, b *bearer, cfg config) error {
	_, err := b.get(ctx)
	if _, ok := refusedWith(err, http.StatusUnauthorized); ok {
		return fmt.Errorf("tenant %s does not accept client %s from %s (the database was reset?): run scripts/demo, which registers it again",
			cfg.Tenant, b.client.Name, cfg.KeysDir)
	}
	return err
}

// run starts a task every 1/Rate seconds (jittered) until stop is done or
// Duration has passed, then lets the tasks in flight finish; ctx ends
// everything at once.
func (d *driver) run(ctx, stop context.Context) (counts, error) {
	interval := time.Duration(float64(time.Second) / d.cfg.Rate)
	var deadline <-chan time.Time
	if d.cfg.Duration > 0 {
		timer := time.NewTimer(d.cfg.Duration)
		defer timer.Stop()
		deadline = timer.C
	}
	var wg sync.WaitGroup
	var runErr error
	var inFlight atomic.Int64
loop:
	for n := 0; ; n++ {
		if d.consecutiveFailures.Load() >= maxConsecutiveFailures {
			runErr = fmt.Errorf("%d tasks in a row failed, the last with: %v", maxConsecutiveFailures, d.lastFailure.Load())
			break
		}
		wg.Add(1)
		inFlight.Add(1)
		go func() {
			defer wg.Done()
			defer inFlight.Add(-1)
			d.playTask(ctx, n)
		}()
		select {
		case <-ctx.Done():
			break loop
		case <-stop.Done():
			break loop
		case <-deadline:
			break loop
		case <-time.After(jitter(interval)):
		}
	}
	if n := inFlight.Load(); n > 0 && ctx.Err() == nil {
		d.logf("no new tasks; letting those in flight finish (%d; Ctrl-C again to stop at once)", n)
	}
	wg.Wait()
	return d.counts(), runErr
}

func (d *driver) counts() counts {
	return counts{Tasks: d.tasks.Load(), Completed: d.completed.Load(), Revoked: d.revoked.Load(), Silent: d.silent.Load(),
		Failed: d.failed.Load(), Interrupted: d.interrupted.Load(), Refusals: d.refusals.Load()}
}

// jitter is d ±50 %.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d)
}

// agentRun is one agent of a task as the agent process sees itself.
type agentRun struct {
	role     string // root, helper-1, …: for messages
	parent   *agentRun
	id       *agentIdentity
	depth    int
	token    string
	lastSeen time.Time // its last authenticated call, which chit counts as a heartbeat
	revoked  bool
}

// taskRun is one task being played.
type taskRun struct {
	d         *driver
	o         *orchestratorRun
	p         plan
	id        string
	principal string
	agents    []*agentRun
	renewals  int
	refused   []string // the checks of the refusals met, in order
}

// playTask plays task n and prints its line.
func (d *driver) playTask(ctx context.Context, n int) {
	d.tasks.Add(1)
	r := &taskRun{d: d, o: d.orchs[n%len(d.orchs)], p: plans[n%len(plans)], principal: principals[rand.IntN(len(principals))]}
	outcome, err := r.play(ctx)
	switch {
	case ctx.Err() != nil:
		outcome = "interrupted"
		d.interrupted.Add(1)
	case err != nil:
		outcome = "failed"
		d.failed.Add(1)
		d.lastFailure.Store(err.Error())
		d.consecutiveFailures.Add(1)
		d.logf("task %s (%s): %v", orDash(r.id), r.o.spec.Name, err)
	default:
		d.consecutiveFailures.Store(0)
	}
	d.report(r, outcome)
}

func (r *taskRun) play(ctx context.Context) (string, error) {
	d, o, p := r.d, r.o.spec, r.p
	purpose := o.Purposes[rand.IntN(len(o.Purposes))]
	if p.overreach {
		// The orchestrator first asks for more than policy grants it.
		_, err := r.createTask(ctx, joinScopes(o.TaskScope, o.Overreach), purpose)
		if err := r.expectRefusal(err, http.StatusForbidden, "policy"); err != nil {
			return "", err
		}
		if err := r.pause(ctx); err != nil {
			return "", err
		}
	}
	id, err := r.createTask(ctx, o.TaskScope, purpose)
	if err != nil {
		return "", err
	}
	r.id = id

	orch, err := r.o.token.get(ctx)
	if err != nil {
		return "", err
	}
	launch, err := d.api.taskLaunchToken(ctx, orch, r.id, "")
	if err != nil {
		return "", err
	}
	root, err := r.spawn(ctx, "root", launch, 1)
	if err != nil {
		return "", err
	}
	if p.replay {
		// A launcher that retries a spawn presents the launch token again.
		_, err := d.api.register(ctx, launch)
		if err := r.expectRefusal(err, http.StatusConflict, "replay"); err != nil {
			return "", err
		}
	}
	if err := r.pause(ctx); err != nil {
		return "", err
	}
	if err := r.useAt(ctx, root, true); err != nil {
		return "", err
	}

	var helpers []*agentRun
	for i := range p.helpers {
		if err := r.pause(ctx); err != nil {
			return "", err
		}
		h, err := r.delegate(ctx, root, fmt.Sprintf("helper-%d", i+1), o.HelperScopes[i%len(o.HelperScopes)])
		if err != nil {
			return "", err
		}
		helpers = append(helpers, h)
		if err := r.useAt(ctx, h, true); err != nil {
			return "", err
		}
	}
	if p.nested && len(helpers) > 0 {
		if err := r.pause(ctx); err != nil {
			return "", err
		}
		g, err := r.delegate(ctx, helpers[0], "helper-1.1", o.NestedScope)
		if err != nil {
			return "", err
		}
		if err := r.useAt(ctx, g, true); err != nil {
			return "", err
		}
	}
	if p.overask && len(helpers) > 0 {
		if err := r.pause(ctx); err != nil {
			return "", err
		}
		// A sub-agent asks to hand on more than it holds itself.
		h := helpers[0]
		_, err := d.api.subAgentLaunchToken(ctx, h.token, h.id.ID, o.Overask)
		h.lastSeen = time.Now()
		if err := r.expectRefusal(err, http.StatusForbidden, "scope"); err != nil {
			return "", err
		}
	}
	for range p.renewals {
		if err := r.pause(ctx); err != nil {
			return "", err
		}
		if err := r.renew(ctx, root); err != nil {
			return "", err
		}
	}
	if err := r.pause(ctx); err != nil {
		return "", err
	}
	return r.finish(ctx, root, helpers)
}

// finish ends the task the way its plan says.
func (r *taskRun) finish(ctx context.Context, root *agentRun, helpers []*agentRun) (string, error) {
	d := r.d
	switch r.p.end {
	case completedByRootAgent:
		if err := d.api.completeTask(ctx, root.token, r.id); err != nil {
			return "", err
		}
		d.completed.Add(1)
		return "completed-by-agent", nil
	case helperRevoked, chainRevoked:
		orch, err := r.o.token.get(ctx)
		if err != nil {
			return "", err
		}
		level, target, outcome := "agent", root, "helper-revoked"
		if len(helpers) > 0 {
			target = helpers[len(helpers)-1]
		}
		if r.p.end == chainRevoked {
			level, target, outcome = "chain", root, "chain-revoked"
		}
		reason := revocationReasons[rand.IntN(len(revocationReasons))]
		if _, err := d.api.revoke(ctx, orch, level, target.id.ID, reason); err != nil {
			return "", err
		}
		r.markRevoked(target)
		d.revoked.Add(1)
		if err := r.pause(ctx); err != nil {
			return "", err
		}
		// The revoked agent has not heard yet and tries to carry on; its
		// resource server sees the token dead at once.
		_, err = d.api.renew(ctx, target.id, target.token, "")
		if err := r.expectRefusal(err, http.StatusBadRequest, "revoked"); err != nil {
			return "", err
		}
		if err := r.useAt(ctx, target, false); err != nil {
			return "", err
		}
		if err := r.pause(ctx); err != nil {
			return "", err
		}
		// The orchestrator closes the task either way: nothing under it stays valid.
		if err := d.api.completeTask(ctx, orch, r.id); err != nil {
			return "", err
		}
		return outcome, nil
	case wentSilent:
		// The agents' host is gone: nobody heartbeats, nobody completes the
		// task. chit's liveness sweep revokes the agents after the tenant's window.
		d.silent.Add(1)
		return "silent", nil
	default:
		orch, err := r.o.token.get(ctx)
		if err != nil {
			return "", err
		}
		if err := d.api.completeTask(ctx, orch, r.id); err != nil {
			return "", err
		}
		d.completed.Add(1)
		return "completed", nil
	}
}

// taskTTL outlasts any story, and the default liveness window of a silent one.
const taskTTL = 15 * time.Minute

func (r *taskRun) createTask(ctx context.Context, scope, purpose string) (string, error) {
	orch, err := r.o.token.get(ctx)
	if err != nil {
		return "", err
	}
	var out struct {
		TaskID string `json:"task_id"`
	}
	err = r.d.api.postJSON(ctx, "/v1/tasks", orch, map[string]any{"principal": r.principal, "purpose": purpose,
		"scope": scope, "audiences": []string{r.o.spec.Audience}, "ttl_seconds": int(taskTTL / time.Second)}, &out)
	return out.TaskID, err
}

// spawn registers a new agent with launch and gets its first token.
func (r *taskRun) spawn(ctx context.Context, role, launch string, depth int) (*agentRun, error) {
	id, err := r.d.api.register(ctx, launch)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", role, err)
	}
	tok, err := r.d.api.exchange(ctx, id, "")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", role, err)
	}
	a := &agentRun{role: role, id: id, depth: depth, token: tok.AccessToken, lastSeen: time.Now()}
	r.agents = append(r.agents, a)
	return a, nil
}

// delegate has parent launch a sub-agent with a narrower scope.
func (r *taskRun) delegate(ctx context.Context, parent *agentRun, role, scope string) (*agentRun, error) {
	launch, err := r.d.api.subAgentLaunchToken(ctx, parent.token, parent.id.ID, scope)
	if err != nil {
		return nil, fmt.Errorf("%s delegating to %s: %w", parent.role, role, err)
	}
	parent.lastSeen = time.Now()
	a, err := r.spawn(ctx, role, launch, parent.depth+1)
	if err != nil {
		return nil, err
	}
	a.parent = parent
	return a, nil
}

// renew exchanges the agent's token for a fresh one before it expires.
func (r *taskRun) renew(ctx context.Context, a *agentRun) error {
	tok, err := r.d.api.renew(ctx, a.id, a.token, "")
	if err != nil {
		return fmt.Errorf("%s renewing: %w", a.role, err)
	}
	a.token, a.lastSeen = tok.AccessToken, time.Now()
	r.renewals++
	return nil
}

// useAt has the agent call its resource server, which introspects the
// token it presents; live tells what the answer must be.
func (r *taskRun) useAt(ctx context.Context, a *agentRun, live bool) error {
	rs, err := r.o.resource.get(ctx)
	if err != nil {
		return err
	}
	active, err := r.d.api.introspect(ctx, rs, a.token)
	if err != nil {
		return fmt.Errorf("%s introspecting %s's token: %w", r.o.spec.Resource, a.role, err)
	}
	if active != live {
		return fmt.Errorf("%s found %s's token active=%v, want %v", r.o.spec.Resource, a.role, active, live)
	}
	return nil
}

// expectRefusal checks that chit refused with status, and records it under check.
func (r *taskRun) expectRefusal(err error, status int, check string) error {
	if err == nil {
		return fmt.Errorf("expected a %s refusal (%d), but chit accepted", check, status)
	}
	if _, ok := refusedWith(err, status); !ok {
		return fmt.Errorf("expected a %s refusal (%d): %w", check, status, err)
	}
	r.refused = append(r.refused, check)
	r.d.refusals.Add(1)
	return nil
}

// markRevoked notes that target and everything it delegated to lost their
// authority (an agent's revocation ends its descendants' too), so they no
// longer heartbeat.
func (r *taskRun) markRevoked(target *agentRun) {
	for _, a := range r.agents {
		for up := a; up != nil; up = up.parent {
			if up == target {
				a.revoked = true
				break
			}
		}
	}
}

// pause is an agent's think time; meanwhile every agent quiet for two
// steps heartbeats, as a live agent process does.
func (r *taskRun) pause(ctx context.Context) error {
	t := time.NewTimer(jitter(r.d.cfg.Step))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	}
	for _, a := range r.agents {
		if a.revoked || time.Since(a.lastSeen) < 2*r.d.cfg.Step {
			continue
		}
		if err := r.d.api.heartbeat(ctx, a.token, a.id.ID); err != nil {
			return fmt.Errorf("%s heartbeat: %w", a.role, err)
		}
		a.lastSeen = time.Now()
	}
	return nil
}

// report prints the task's line: identifiers and counts, never a token.
func (d *driver) report(r *taskRun, outcome string) {
	depth := 0
	for _, a := range r.agents {
		depth = max(depth, a.depth)
	}
	refused := "-"
	if len(r.refused) > 0 {
		refused = strings.Join(r.refused, ",")
	}
	d.outMu.Lock()
	defer d.outMu.Unlock()
	fmt.Fprintf(d.cfg.Out, "%s task=%s orchestrator=%s principal=%s agents=%d depth=%d renewals=%d refused=%s outcome=%s\n",
		time.Now().Format("15:04:05"), orDash(r.id), r.o.spec.Name, r.principal, len(r.agents), depth, r.renewals, refused, outcome)
}

func (d *driver) logf(format string, args ...any) {
	d.outMu.Lock()
	defer d.outMu.Unlock()
	fmt.Fprintf(d.cfg.Log, "chit-demo: "+format+"\n", args...)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
