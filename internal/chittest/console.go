package chittest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/audit"
	"github.com/chitdev/chit/tenants/policy"
	"github.com/chitdev/chit/tenants/users"
)

// ConsolePassword is every test console user's password.
const ConsolePassword = "test password of twenty+ chars"

// ConsoleUser creates a console user of the tenant with a role and returns
// their address.
func (tn *Tenant) ConsoleUser(role policy.Role) string {
	t := tn.Env.T
	t.Helper()
	email := strings.ToLower(string(role)) + "-" + randomSuffix() + "@" + tn.T.Slug.String() + ".test"
	_, _, err := tn.Env.Users.Create(context.Background(), users.CreateParams{TenantID: tn.T.ID, Email: users.Email(email),
		Password: ConsolePassword, Role: role, Actor: "test"})
	require.NoError(t, err)
	return email
}

// Browser is a console user's browser: a cookie jar and the last page's
// CSRF token; it does not follow redirects, so tests see them.
type Browser struct {
	Env    *Env
	Client *http.Client
	CSRF   string
}

// Browser starts a browser with no cookies.
func (e *Env) Browser() *Browser {
	jar, _ := cookiejar.New(nil)
	return &Browser{Env: e, Client: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// Page is a response and its parsed HTML.
type Page struct {
	Status int
	Header http.Header
	Body   string
	Doc    *goquery.Document
}

// TestID selects the elements with data-testid id.
func (p *Page) TestID(id string) *goquery.Selection {
	return p.Doc.Find(`[data-testid="` + id + `"]`)
}

// Get loads a console path and remembers the page's CSRF token.
func (b *Browser) Get(path string) *Page {
	b.Env.T.Helper()
	return b.do(http.MethodGet, path, nil)
}

// Post submits a form with the remembered CSRF token (unless the form sets
// its own "csrf").
func (b *Browser) Post(path string, form url.Values) *Page {
	b.Env.T.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.CSRF)
	}
	return b.do(http.MethodPost, path, form)
}

// Login signs in through the login form and fails the test unless it worked.
func (b *Browser) Login(email, password string) {
	b.Env.T.Helper()
	p := b.TryLogin(email, password)
	require.Equal(b.Env.T, http.StatusSeeOther, p.Status, "login of %s: %s", email, p.Body)
	// Land on the tenant's first page, which carries the new session's CSRF token.
	if home := b.Get("/console/"); home.Status == http.StatusSeeOther {
		b.Get(home.Header.Get("Location"))
	}
}

// TryLogin submits the login form and returns the answer.
func (b *Browser) TryLogin(email, password string) *Page {
	b.Env.T.Helper()
	login := b.Get("/console/login")
	require.Equal(b.Env.T, http.StatusOK, login.Status)
	return b.Post("/console/login", url.Values{"email": {email}, "password": {password}})
}

// Cookie is the jar's value of a cookie for the server, or "".
func (b *Browser) Cookie(name string) string {
	u, _ := url.Parse(b.Env.Addr + "/console/")
	for _, c := range b.Client.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

func (b *Browser) do(method, path string, form url.Values) *Page {
	t := b.Env.T
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.Env.Addr+path, body)
	require.NoError(t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", b.Env.Addr)
	}
	resp, err := b.Client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	doc, err := goquery.NewDocumentFromReader(bytes.NewReader(raw))
	require.NoError(t, err)
	if token, ok := doc.Find(`input[name="csrf"]`).First().Attr("value"); ok && token != "" {
		b.CSRF = token
	}
	return &Page{Status: resp.StatusCode, Header: resp.Header, Body: string(raw), Doc: doc}
}

func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// SealChain does what chit serve's worker does every few seconds (a test
// server runs none): it links every audit event of the tenant so far into
// the hash chain and seals the head with a signed checkpoint, and returns
// the number of links. The chainer links only events no running
// transaction can still precede, and other tests' transactions on the same
// PostgreSQL can hold that back for a moment, hence the bounded retries.
func (e *Env) SealChain(tenantID uuid.UUID) int64 {
	t := e.T
	t.Helper()
	ctx := context.Background()
	var links int64
	for deadline := time.Now().Add(20 * time.Second); ; {
		_, err := audit.ChainPending(ctx, e.DB, tenantID, time.Now(), 100000)
		require.NoError(t, err)
		report, err := audit.Verify(ctx, e.DB, tenantID)
		require.NoError(t, err)
		require.Nil(t, report.Problem)
		if links = report.Links; report.Unchained == 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "%d events still unchained", report.Unchained)
		time.Sleep(20 * time.Millisecond)
	}
	_, err := audit.Seal(ctx, e.DB, e.Keys, tenantID, time.Now())
	require.NoError(t, err)
	return links
}
