package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"

	"github.com/chitdev/chit/audit"
	"github.com/chitdev/chit/internal/fault"
	"github.com/chitdev/chit/oauth"
	"github.com/chitdev/chit/tenants/keyring"
	"github.com/chitdev/chit/tenants/policy"
	"github.com/chitdev/chit/ui"
)

// governancePages are the console's audit trail, policies and keys.
func (s *Server) governancePages(g *echo.Group) {
	view, audits := allow(policy.ViewCredentials), allow(policy.ReadAudit)
	edit, rotate := allow(policy.EditPolicy), allow(policy.RotateKeys)
	g.GET("/policies", s.policiesPage, view)
	g.POST("/policies/grant", s.policyGrant, edit)
	g.GET("/policies/revoke", s.policyRevokePage, edit)
	g.POST("/policies/revoke", s.policyRevoke, edit)
	g.POST("/policies/users/role", s.consoleUserRole, edit)
	g.GET("/keys", s.keysPage, view)
	g.GET("/keys/rotate", s.keyRotatePage, rotate)
	g.POST("/keys/rotate", s.keyRotate, rotate)
	g.GET("/audit", s.auditPage, audits)
	g.GET("/audit/export", s.auditDownload, audits)
	g.GET("/audit/keys.json", s.auditKeysDownload, audits)
}

// doneMessages are the flashes a redirect after a change may ask for; the
// URL names one, never carries text.
var doneMessages = map[string]string{
	"granted": "Grant added. Every replica enforces it from the next request.",
	"revoked": "Rule revoked. Every replica enforces it from the next request.",
	"rotated": "New signing key active. The previous key stays published until its last token expires.",
	"role":    "Role changed. It applies to the user's next page.",
}

func withDone(sh ui.Shell, c echo.Context) ui.Shell {
	if msg, ok := doneMessages[c.QueryParam("done")]; ok {
		sh.Flash = &ui.Flash{Kind: "ok", Text: msg}
	}
	return sh
}

// policyClientsPerPage is how many clients one page of policies shows.
const policyClientsPerPage = 20

func (s *Server) policiesPage(c echo.Context) error {
	ctx, cc := c.Request().Context(), consoleOf(c)
	// One read serves the grant form (every orchestrator) and the page of
	// clients (by id; the cursor is the last id shown).
	all, err := s.deps.OAuth.Clients(ctx, cc.tenant)
	if err != nil {
		return err
	}
	after := c.QueryParam("after")
	clients := all
	if after != "" {
		i := sort.Search(len(all), func(i int) bool { return all[i].ID > after })
		clients = all[i:]
	}
	rules, err := s.console.Policy.List(ctx, cc.tenant.ID)
	if err != nil {
		return err
	}
	filter := strings.TrimSpace(c.QueryParam("client"))
	canEdit := cc.role.Can(policy.EditPolicy)
	byClient := map[string][]ui.PolicyRule{}
	for _, r := range rules {
		pr := ui.PolicyRule{Kind: string(r.Action), Value: r.Pattern, GrantedAt: r.GrantedAt, GrantedBy: r.GrantedBy}
		if canEdit {
			pr.RevokeHref = pathsOf(c).page("policies/revoke?" + url.Values{"client": {r.ClientID}, "kind": {string(r.Action)},
				"value": {r.Pattern}}.Encode())
		}
		byClient[r.ClientID] = append(byClient[r.ClientID], pr)
	}
	p := ui.PoliciesProps{Shell: withDone(s.shell(c, "Policies", ui.NavPolicies), c), Filter: filter, CanEdit: canEdit,
		GrantPath: pathsOf(c).page("policies/grant")}
	for _, cl := range all {
		if cl.Kind == oauth.KindOrchestrator {
			p.Orchestrators = append(p.Orchestrators, cl.ID)
		}
	}
	if filter != "" {
		clients = nil
		for _, cl := range all {
			if cl.ID == filter {
				clients = append(clients, cl)
			}
		}
	} else {
		if len(clients) > policyClientsPerPage {
			clients = clients[:policyClientsPerPage]
			p.Next = "?" + url.Values{"after": {clients[len(clients)-1].ID}}.Encode()
		}
		if after != "" {
			p.First = "?"
		}
	}
	for _, cl := range clients {
		rs := byClient[cl.ID]
		sort.SliceStable(rs, func(i, j int) bool { return rs[i].Kind < rs[j].Kind })
		p.Clients = append(p.Clients, ui.PolicyClient{ID: cl.ID, Name: cl.Name, Kind: string(cl.Kind), Rules: rs})
	}
	members, err := s.console.Users.Members(ctx, cc.tenant.ID)
	if err != nil {
		return err
	}
	p.RolePath = pathsOf(c).page("policies/users/role")
	for _, m := range members {
		role, _ := s.console.Policy.ConsoleRole(cc.tenant.ID, m.ID.String())
		p.Users = append(p.Users, ui.ConsoleUserRow{ID: m.ID.String(), Email: string(m.Email), Role: string(role),
			Disabled: m.Disabled, CanChange: canEdit && m.ID != cc.sess.User.ID})
	}
	return render(c, http.StatusOK, ui.Policies(p))
}

// consoleUserRole gives a console user of the tenant exactly one role, or
// none (no access). An admin cannot change their own role: nobody locks
// themselves out by mistake, and a tenant keeps its admin.
func (s *Server) consoleUserRole(c echo.Context) error {
	ctx, cc := c.Request().Context(), consoleOf(c)
	userID, err := uuid.Parse(c.FormValue("user"))
	if err != nil {
		return fault.New(fault.NotFound, "No such console user.")
	}
	if userID == cc.sess.User.ID {
		return fault.New(fault.Forbidden, "You cannot change your own role; ask another admin.")
	}
	var want policy.Role
	if v := c.FormValue("role"); v != "" {
		if want, err = policy.ParseRole(v); err != nil {
			return err
		}
	}
	members, err := s.console.Users.Members(ctx, cc.tenant.ID)
	if err != nil {
		return err
	}
	member := false
	for _, m := range members {
		member = member || m.ID == userID
	}
	if !member {
		return fault.New(fault.NotFound, "No such console user.")
	}
	id := userID.String()
	if want != "" {
		if err := s.console.Policy.AssignRole(ctx, cc.tenant.ID, id, want, cc.actor()); err != nil {
			return err
		}
	}
	for _, r := range []policy.Role{policy.RoleAdmin, policy.RoleAuditor, policy.RoleViewer} {
		if r != want && s.console.Policy.HasRole(cc.tenant.ID, id, r) {
			if err := s.console.Policy.RevokeRole(ctx, cc.tenant.ID, id, r, cc.actor()); err != nil {
				return err
			}
		}
	}
	return c.Redirect(http.StatusSeeOther, pathsOf(c).page("policies?done=role"))
}

func (s *Server) policyGrant(c echo.Context) error {
	ctx, cc := c.Request().Context(), consoleOf(c)
	client := strings.TrimSpace(c.FormValue("client"))
	scopes, audiences := strings.Fields(c.FormValue("scopes")), strings.Fields(c.FormValue("audiences"))
	if err := s.requireOrchestrator(c, client); err != nil {
		return err
	}
	if len(scopes) == 0 && len(audiences) == 0 {
		return fault.InvalidField("scopes", "Name at least one scope pattern or audience.")
	}
	if err := s.console.Policy.Grant(ctx, cc.tenant.ID, client, scopes, audiences, cc.actor()); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, pathsOf(c).page("policies?"+url.Values{"client": {client}, "done": {"granted"}}.Encode()))
}

// requireOrchestrator answers 404 unless client is one of the tenant's
// orchestrators.
func (s *Server) requireOrchestrator(c echo.Context, client string) error {
	clients, err := s.deps.OAuth.Clients(c.Request().Context(), consoleOf(c).tenant)
	if err != nil {
		return err
	}
	for _, cl := range clients {
		if cl.ID == client && cl.Kind == oauth.KindOrchestrator {
			return nil
		}
	}
	return fault.New(fault.NotFound, "No orchestrator %q in this tenant.", client)
}

// ruleOf reads the rule a revoke form or link names, and checks it exists.
func (s *Server) ruleOf(c echo.Context, client, kind, value string) (policy.Rule, error) {
	rules, err := s.console.Policy.List(c.Request().Context(), consoleOf(c).tenant.ID)
	if err != nil {
		return policy.Rule{}, err
	}
	for _, r := range rules {
		if r.ClientID == client && string(r.Action) == kind && r.Pattern == value {
			return r, nil
		}
	}
	return policy.Rule{}, fault.New(fault.NotFound, "No such rule.")
}

func (s *Server) policyRevokePage(c echo.Context) error {
	q := c.QueryParams()
	r, err := s.ruleOf(c, q.Get("client"), q.Get("kind"), q.Get("value"))
	if err != nil {
		return err
	}
	sh := s.shell(c, "Revoke a rule", ui.NavPolicies)
	return render(c, http.StatusOK, ui.PolicyRevoke(ui.PolicyRevokeProps{Shell: sh, Confirm: ui.ConfirmProps{
		Title: "Revoke " + string(r.Action) + " " + r.Pattern + " from " + r.ClientID + "?",
		Body: "The next request that needs this rule is refused on every replica, including requests for tasks created earlier. " +
			"The change is recorded in the audit trail under your name.",
		Action: pathsOf(c).page("policies/revoke"), CSRF: sh.CSRF, Submit: "Revoke rule",
		Cancel: pathsOf(c).page("policies?" + url.Values{"client": {r.ClientID}}.Encode()),
		Fields: []ui.Hidden{{Name: "client", Value: r.ClientID}, {Name: "kind", Value: string(r.Action)}, {Name: "value", Value: r.Pattern}},
	}}))
}

func (s *Server) policyRevoke(c echo.Context) error {
	ctx, cc := c.Request().Context(), consoleOf(c)
	r, err := s.ruleOf(c, c.FormValue("client"), c.FormValue("kind"), c.FormValue("value"))
	if err != nil {
		return err
	}
	switch r.Action {
	case policy.ActScope:
		err = s.console.Policy.Revoke(ctx, cc.tenant.ID, r.ClientID, []string{r.Pattern}, nil, cc.actor())
	case policy.ActAudience:
		err = s.console.Policy.Revoke(ctx, cc.tenant.ID, r.ClientID, nil, []string{r.Pattern}, cc.actor())
	case policy.ActIntrospect, policy.ActFeed:
		err = s.console.Policy.RevokeAccess(ctx, cc.tenant.ID, r.ClientID, []policy.Action{r.Action}, cc.actor())
	case policy.ActMaxTaskTTL, policy.ActMaxDepth:
		err = s.console.Policy.ClearCaps(ctx, cc.tenant.ID, r.ClientID, r.Action == policy.ActMaxTaskTTL, r.Action == policy.ActMaxDepth, cc.actor())
	default:
		err = fault.New(fault.NotFound, "No such rule.")
	}
	if err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, pathsOf(c).page("policies?"+url.Values{"client": {r.ClientID}, "done": {"revoked"}}.Encode()))
}

// keysPerPage is how many signing keys one page lists.
const keysPerPage = 20

func (s *Server) keysPage(c echo.Context) error {
	cc := consoleOf(c)
	keys, err := s.console.AllKeys(c.Request().Context(), cc.tenant.ID)
	if err != nil {
		return err
	}
	now := time.Now()
	p := ui.KeysProps{Shell: withDone(s.shell(c, "Signing keys", ui.NavKeys), c), JWKSHref: "/t/" + cc.tenant.Slug.String() + "/jwks.json"}
	if cc.role.Can(policy.RotateKeys) {
		p.RotateHref = pathsOf(c).page("keys/rotate")
	}
	// Newest first, a page at a time; the cursor is the last kid shown.
	if after := c.QueryParam("after"); after != "" {
		p.First = "?"
		for i, k := range keys {
			if k.KeyID == after {
				keys = keys[i+1:]
				break
			}
		}
	}
	if len(keys) > keysPerPage {
		keys = keys[:keysPerPage]
		p.Next = "?" + url.Values{"after": {keys[len(keys)-1].KeyID}}.Encode()
	}
	for _, k := range keys {
		row := ui.KeyRow{KID: k.KeyID, Status: "active", StatusLabel: "active, signing", CreatedAt: k.CreatedAt}
		if k.RetiredAt != nil {
			row.RetiredAt = *k.RetiredAt
			row.Status, row.StatusLabel = "retired", "retired"
			if k.PublishUntil != nil {
				row.PublishUntil = *k.PublishUntil
				if k.PublishUntil.After(now) {
					row.Status, row.StatusLabel = "pending", "retired, still published"
				}
			}
		}
		p.Keys = append(p.Keys, row)
	}
	return render(c, http.StatusOK, ui.Keys(p))
}

func (s *Server) keyRotatePage(c echo.Context) error {
	cc := consoleOf(c)
	sh := s.shell(c, "Rotate the signing key", ui.NavKeys)
	return render(c, http.StatusOK, ui.KeyRotate(ui.KeyRotateProps{Shell: sh, Confirm: ui.ConfirmProps{
		Title: "Rotate the signing key of " + cc.tenant.Slug.String() + "?",
		Body: "New tokens and checkpoints are signed with a new Ed25519 key at once. The current key's private half is destroyed; " +
			"its public half stays in the JWKS for " + cc.tenant.KeyPublishWindow().String() + " so tokens it signed still verify.",
		Action: pathsOf(c).page("keys/rotate"), CSRF: sh.CSRF, Submit: "Rotate key", Cancel: pathsOf(c).page("keys"),
	}}))
}

func (s *Server) keyRotate(c echo.Context) error {
	cc := consoleOf(c)
	if _, _, err := s.console.Admin.RotateKeyBy(c.Request().Context(), cc.tenant.Slug.String(), cc.actor()); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, pathsOf(c).page("keys?done=rotated"))
}

// auditPageSize is how many events one page of the trail shows.
const auditPageSize = 50

func (s *Server) auditPage(c echo.Context) error {
	ctx, cc := c.Request().Context(), consoleOf(c)
	q := c.QueryParams()
	p := ui.AuditProps{Shell: s.shell(c, "Audit trail", ui.NavAudit), KeysURL: pathsOf(c).page("audit/keys.json"),
		Filter: ui.AuditFilter{Agent: q.Get("agent_id"), Task: q.Get("task_id"), Principal: q.Get("principal"),
			Client: q.Get("client_id"), Type: q.Get("type"), From: q.Get("from"), To: q.Get("to")},
		Export: ui.AuditExport{Action: pathsOf(c).page("audit/export")}}
	for _, t := range audit.Types {
		p.Types = append(p.Types, string(t))
	}
	// Paging and verify links keep the filters, never a request to verify
	// again (it walks the whole chain).
	base := copyQuery(q)
	base.Del("verify")
	f, err := auditFilter(q)
	if err != nil {
		p.Filter.Error = fault.Message(err)
	} else {
		f.Limit = auditPageSize
		page, err := audit.Query(ctx, s.console.DB, cc.tenant.ID, f)
		if fault.KindOf(err) == fault.Invalid {
			p.Filter.Error = fault.Message(err)
		} else if err != nil {
			return err
		}
		if page != nil {
			actors := make([]string, 0, len(page.Events))
			for _, e := range page.Events {
				p.Events = append(p.Events, s.auditRow(c, e))
				actors = append(actors, e.Actor)
			}
			names, err := s.userNames(c, actors)
			if err != nil {
				return err
			}
			for i := range p.Events {
				p.Events[i].ActorName = names[p.Events[i].Actor]
			}
			if page.NextCursor != "" {
				next := copyQuery(base)
				next.Set("cursor", page.NextCursor)
				p.Next = "?" + next.Encode()
			}
		}
		if q.Get("cursor") != "" {
			first := copyQuery(base)
			first.Del("cursor")
			p.First = "?" + first.Encode()
		}
	}
	verify := copyQuery(base)
	verify.Set("verify", "1")
	p.Chain, err = s.chainStatus(c, q.Get("verify") == "1")
	if err != nil {
		return err
	}
	p.Chain.VerifyHref = "?" + verify.Encode()
	return render(c, http.StatusOK, ui.Audit(p))
}

// auditFilter reads the filter form. Times are the browser's
// datetime-local values, taken as UTC, or RFC 3339.
func auditFilter(q url.Values) (audit.Filter, error) {
	var f audit.Filter
	var err error
	if v := strings.TrimSpace(q.Get("agent_id")); v != "" {
		if f.AgentID, err = uuid.Parse(v); err != nil {
			return f, fault.InvalidField("agent_id", "Agent id must be a UUID.")
		}
	}
	if v := strings.TrimSpace(q.Get("task_id")); v != "" {
		if f.TaskID, err = uuid.Parse(v); err != nil {
			return f, fault.InvalidField("task_id", "Task id must be a UUID.")
		}
	}
	f.Principal, f.ClientID = strings.TrimSpace(q.Get("principal")), strings.TrimSpace(q.Get("client_id"))
	f.Type, f.Cursor = audit.Type(q.Get("type")), q.Get("cursor")
	if f.From, err = formTime(q.Get("from")); err != nil {
		return f, fault.InvalidField("from", "From must be a date and time.")
	}
	if f.To, err = formTime(q.Get("to")); err != nil {
		return f, fault.InvalidField("to", "To must be a date and time.")
	}
	return f, nil
}

func formTime(v string) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339} {
		if t, err := time.ParseInLocation(layout, v, time.UTC); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fault.New(fault.Invalid, "not a time")
}

func (s *Server) auditRow(c echo.Context, e audit.PageEvent) ui.AuditRow {
	row := ui.AuditRow{ID: e.ID.String(), Time: e.Time, Type: string(e.Type), Outcome: string(e.Outcome), Actor: e.Actor, Principal: e.Principal}
	link := func(label string, id *uuid.UUID, sub string) {
		if id != nil {
			row.Links = append(row.Links, ui.AuditLink{Label: label, ID: id.String(), Href: pathsOf(c).page(sub + "/" + id.String())})
		}
	}
	link("task", e.TaskID, "tasks")
	link("agent", e.AgentID, "agents")
	link("token", e.TokenID, "tokens")
	link("denial", e.DenialID, "denials")
	link("revocation", e.RevocationID, "revocations")
	if len(e.Detail) > 0 {
		if b, err := json.Marshal(e.Detail); err == nil {
			row.Detail = string(b)
		}
	}
	return row
}

// chainStatus reads the last checkpoint and, when asked, walks the chain
// and checks every checkpoint against the tenant's own keys.
func (s *Server) chainStatus(c echo.Context, verify bool) (ui.ChainStatus, error) {
	ctx, cc := c.Request().Context(), consoleOf(c)
	var st ui.ChainStatus
	cp, err := audit.LastCheckpoint(ctx, s.console.DB, cc.tenant.ID)
	if err != nil {
		return st, err
	}
	if cp != nil {
		st.Checkpoint, st.CheckpointSeq, st.CheckpointAt, st.CheckpointKID, st.CheckpointHead = true, cp.Seq, cp.SealedAt, cp.KeyID, cp.HeadHash
	}
	if !verify {
		return st, nil
	}
	rep, err := audit.Verify(ctx, s.console.DB, cc.tenant.ID)
	if err != nil {
		return st, err
	}
	st.Verified, st.Links, st.Unchained = true, rep.Links, rep.Unchained
	problem := rep.Problem
	if problem == nil {
		keys, err := s.console.AllKeys(ctx, cc.tenant.ID)
		if err != nil {
			return st, err
		}
		if problem, err = audit.VerifyCheckpoints(ctx, s.console.DB, cc.tenant.ID, keyring.ByKID(keys)); err != nil {
			return st, err
		}
	}
	st.OK = problem == nil
	if problem != nil {
		st.Problem = problem.Error()
	}
	return st, nil
}

// auditDownload streams [from, to) of the trail, and records who took it.
func (s *Server) auditDownload(c echo.Context) error {
	ctx, cc := c.Request().Context(), consoleOf(c)
	q := c.QueryParams()
	from, err := formTime(q.Get("from"))
	if err != nil {
		return fault.InvalidField("from", "From must be a date and time.")
	}
	to, err := formTime(q.Get("to"))
	if err != nil {
		return fault.InvalidField("to", "To must be a date and time.")
	}
	if from.IsZero() {
		from = time.Unix(0, 0).UTC()
	}
	if to.IsZero() {
		to = time.Now().UTC().Add(time.Minute)
	}
	format, contentType, err := exportFormat(q.Get("format"))
	if err != nil {
		return err
	}
	err = s.console.DB.InTenantTx(ctx, cc.tenant.ID, func(tx pgx.Tx) error {
		return audit.Append(ctx, tx, cc.tenant.ID, audit.Event{Time: time.Now(), Type: audit.Exported, Actor: cc.actor(),
			Detail: map[string]any{"from": from, "to": to, "format": format}})
	})
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, contentType)
	h.Set(echo.HeaderContentDisposition, `attachment; filename="audit-`+cc.tenant.Slug.String()+`-`+time.Now().UTC().Format("20060102T150405Z")+`.`+format+`"`)
	c.Response().WriteHeader(http.StatusOK)
	rc := http.NewResponseController(c.Response().Writer)
	_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Minute)) // a large range takes a while
	if err := audit.Export(ctx, s.console.DB, cc.tenant.ID, from, to, format, c.Response()); err != nil {
		s.log.ErrorContext(ctx, "console audit export failed mid-stream", "tenant", cc.tenant.Slug.String(), "error", err)
	}
	return nil
}

// auditKeysDownload is every public key the tenant ever signed with, as a
// JWKS for `chit audit verify --jwks`.
func (s *Server) auditKeysDownload(c echo.Context) error {
	cc := consoleOf(c)
	keys, err := s.console.AllKeys(c.Request().Context(), cc.tenant.ID)
	if err != nil {
		return err
	}
	body, err := json.MarshalIndent(keyring.JWKS(keys), "", "  ")
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderContentDisposition, `attachment; filename="keys-`+cc.tenant.Slug.String()+`.jwks.json"`)
	return c.Blob(http.StatusOK, "application/jwk-set+json", body)
}
