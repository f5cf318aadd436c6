package web

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/chitdev/chit/internal/fault"
	"github.com/chitdev/chit/oauth/inventory"
	"github.com/chitdev/chit/tenants/policy"
	"github.com/chitdev/chit/ui"
)

// credentialPages are the console's views of credentials: overview,
// agents, tasks and their lineage, tokens, denials and revocations, and
// revocation through a confirm step.
func (s *Server) credentialPages(g *echo.Group) {
	view := allow(policy.ViewCredentials)
	g.GET("", func(c echo.Context) error {
		return c.Redirect(http.StatusFound, pathsOf(c).overview())
	})
	g.GET("/", s.overviewPage, view)
	g.GET("/agents", s.agentsPage, view)
	g.GET("/agents/:id", s.agentPage, view)
	g.GET("/tasks", s.tasksPage, view)
	g.GET("/tasks/:id", s.taskPage, view)
	g.GET("/tokens/:jti", s.tokenPage, view)
	g.GET("/denials", s.denialsPage, view)
	g.GET("/denials/:id", s.denialPage, view)
	g.GET("/revocations", s.revocationsPage, view)
	g.GET("/revocations/:id", s.revocationPage, view)
	revoke := allow(policy.Revoke)
	g.GET("/revoke", s.revokeConfirmPage, revoke)
	g.POST("/revoke", s.consoleRevoke, revoke)
}

// consolePaths builds the console URLs of one tenant's pages.
type consolePaths struct{ slug string }

func pathsOf(c echo.Context) consolePaths {
	return consolePaths{slug: consoleOf(c).tenant.Slug.String()}
}

func (p consolePaths) page(sub string) string { return ui.TenantPath(p.slug, sub) }
func (p consolePaths) overview() string       { return p.page("") }
func (p consolePaths) agent(id uuid.UUID) string {
	return p.page("agents/" + id.String())
}
func (p consolePaths) task(id uuid.UUID) string { return p.page("tasks/" + id.String()) }
func (p consolePaths) token(jti uuid.UUID) string {
	return p.page("tokens/" + jti.String())
}
func (p consolePaths) denial(id uuid.UUID) string { return p.page("denials/" + id.String()) }
func (p consolePaths) revocation(id uuid.UUID) string {
	return p.page("revocations/" + id.String())
}

// withQuery is path with a query; empty values are left out.
func withQuery(path string, q url.Values) string {
	clean := url.Values{}
	for k, vs := range q {
		for _, v := range vs {
			if v != "" {
				clean.Add(k, v)
			}
		}
	}
	if len(clean) == 0 {
		return path
	}
	return path + "?" + clean.Encode()
}

func (p consolePaths) revoke(level string, target uuid.UUID) string {
	return withQuery(p.page("revoke"), url.Values{"level": {level}, "target": {target.String()}})
}

// policies is where a rule of a client's governance is shown.
func (p consolePaths) policies(clientID string) string {
	return withQuery(p.page("policies"), url.Values{"client": {clientID}})
}

// idParam reads an id from the path. Anything that is not an id names
// nothing, so it is a 404 like an id of another tenant.
func idParam(c echo.Context, name, what string) (uuid.UUID, error) {
	id, err := uuid.Parse(c.Param(name))
	if err != nil {
		return uuid.Nil, fault.New(fault.NotFound, "No such %s.", what)
	}
	return id, nil
}

// idFilter reads an optional id filter from the query.
func idFilter(c echo.Context, name string) (uuid.UUID, error) {
	raw := c.QueryParam(name)
	if raw == "" {
		return uuid.Nil, nil
	}
	id, err := uuid.Parse(raw)
	if err != nil {
		return uuid.Nil, fault.InvalidField(name, "must be an id")
	}
	return id, nil
}

// pageOf reads a list's cursor and page size (limit, optional) from the query.
func pageOf(c echo.Context) (inventory.Page, error) {
	p := inventory.Page{Cursor: c.QueryParam("cursor")}
	if raw := c.QueryParam("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > inventory.MaxLimit {
			return p, fault.InvalidField("limit", "must be 1 to %d", inventory.MaxLimit)
		}
		p.Limit = n
	}
	return p, nil
}

// listing is the paging of a list at path: this page, the first one (on
// any later page) and the next one, each keeping the filters of this one.
func listing(c echo.Context, path, next string, filtered bool) ui.Listing {
	q := c.QueryParams()
	l := ui.Listing{Self: withQuery(path, q), Action: path, Filtered: filtered}
	if q.Get("cursor") != "" {
		first := copyQuery(q)
		first.Del("cursor")
		l.First = withQuery(path, first)
	}
	if next != "" {
		n := copyQuery(q)
		n.Set("cursor", next)
		l.Next = withQuery(path, n)
	}
	return l
}

// without is the list at path with its query less the named parameters
// (and the cursor: a changed filter starts from the first page).
func without(c echo.Context, path string, names ...string) string {
	q := copyQuery(c.QueryParams())
	q.Del("cursor")
	for _, n := range names {
		q.Del(n)
	}
	return withQuery(path, q)
}

func copyQuery(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// canRevoke reports whether the signed-in user may revoke: revoke buttons
// are shown to them only.
func canRevoke(c echo.Context) bool { return consoleOf(c).role.Can(policy.Revoke) }

// options are a filter's choices with the current one selected; the
// first is "any".
func options(current string, choices ...ui.Option) []ui.Option {
	out := append([]ui.Option{{Value: "", Label: "Any"}}, choices...)
	for i := range out {
		out[i].Selected = out[i].Value == current
	}
	return out
}
