package oauth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ory/fosite"

	"github.com/chitdev/chit/internal/pgstore"
	"github.com/chitdev/chit/tenants"
)

// The token endpoint runs on fosite: it parses the request, authenticates
// the client through chit's EdDSA strategy, dispatches to the grant
// handlers below and assembles the response. One provider serves every
// tenant: the tenant and the request's transaction travel in the context.

type ctxKey int

const (
	tenantCtx ctxKey = iota
	txCtx
	denialCtx
)

// requestState is what one token request carries through fosite.
type requestState struct {
	svc    *Service
	tenant *tenants.Tenant
	tx     pgx.Tx // begun on first need: the fast exchange path needs none
	client *Client
	denial *Denial // the first refusal, kept with its trace details
	issued *IssuedToken
}

// txn is the request's transaction, begun on first use.
func (st *requestState) txn(ctx context.Context) (pgx.Tx, error) {
	if st.tx == nil {
		tx, err := st.svc.db.BeginTenant(ctx, st.tenant.ID)
		if err != nil {
			return nil, err
		}
		st.tx = tx
	}
	return st.tx, nil
}

func stateOf(ctx context.Context) *requestState {
	st, _ := ctx.Value(tenantCtx).(*requestState)
	return st
}

// tenantConfig answers fosite's per-tenant questions from the context.
type tenantConfig struct {
	*fosite.Config
	svc *Service
}

func (c *tenantConfig) GetTokenURLs(ctx context.Context) []string {
	return c.svc.assertionAudiences(stateOf(ctx).tenant)
}

func (c *tenantConfig) GetAccessTokenIssuer(ctx context.Context) string {
	return c.svc.Issuer(stateOf(ctx).tenant)
}

func (c *tenantConfig) GetAccessTokenLifespan(ctx context.Context) time.Duration {
	return stateOf(ctx).tenant.Settings.TokenTTL
}

// fositeClient adapts a chit client to fosite.
type fositeClient struct{ *Client }

func (c fositeClient) GetID() string             { return c.ID }
func (c fositeClient) GetHashedSecret() []byte   { return nil }
func (c fositeClient) GetRedirectURIs() []string { return nil }
func (c fositeClient) GetGrantTypes() fosite.Arguments {
	return fosite.Arguments{GrantClientCredentials}
}
func (c fositeClient) GetResponseTypes() fosite.Arguments { return nil }
func (c fositeClient) GetScopes() fosite.Arguments        { return nil }
func (c fositeClient) IsPublic() bool                     { return false }
func (c fositeClient) GetAudience() fosite.Arguments      { return nil }

// clientStore is the fosite.Storage the provider asks for clients; chit's
// own strategy authenticates them, so fosite's jti hooks are never used.
type clientStore struct{ svc *Service }

func (s clientStore) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	tx, err := stateOf(ctx).txn(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.svc.clientTx(ctx, tx, id)
	if err != nil {
		return nil, fosite.ErrNotFound
	}
	return fositeClient{c}, nil
}

func (s clientStore) ClientAssertionJWTValid(context.Context, string) error { return nil }
func (s clientStore) SetClientAssertionJWT(context.Context, string, time.Time) error {
	return errors.New("chit consumes assertion ids itself")
}

var errNoClientAuth = fosite.ErrInvalidClient.WithHint("Client authentication is required.")

// authenticateClient is fosite's ClientAuthenticationStrategy: EdDSA
// private_key_jwt only, no shared secrets.
func (s *Service) authenticateClient(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
	st := stateOf(ctx)
	if form.Get("client_assertion") == "" && form.Get("client_assertion_type") == "" {
		if r.Header.Get("Authorization") != "" || form.Get("client_secret") != "" {
			st.denial = clientDenial(CheckFormat, "only private_key_jwt client authentication is accepted")
			return nil, st.denial
		}
		return nil, errNoClientAuth
	}
	tx, err := st.txn(ctx)
	if err != nil {
		return nil, err
	}
	c, d := s.AuthenticateClient(ctx, tx, st.tenant, form.Get("client_assertion_type"), form.Get("client_assertion"))
	if d != nil {
		st.denial = d
		return nil, d
	}
	if id := form.Get("client_id"); id != "" && id != c.ID {
		st.denial = clientDenial(CheckFormat, "client_id differs from the assertion's subject").with(c.ID, id)
		return nil, st.denial
	}
	st.client = c
	return fositeClient{c}, nil
}

// clientCredentialsHandler issues a client its own token for the API.
type clientCredentialsHandler struct{ svc *Service }

func (h clientCredentialsHandler) CanHandleTokenEndpointRequest(_ context.Context, r fosite.AccessRequester) bool {
	return r.GetGrantTypes().ExactOne(GrantClientCredentials)
}

func (h clientCredentialsHandler) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool {
	return false
}

func (h clientCredentialsHandler) HandleTokenEndpointRequest(ctx context.Context, r fosite.AccessRequester) error {
	if !h.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	st := stateOf(ctx)
	if len(r.GetRequestedScopes()) > 0 {
		st.denial = deny(CheckScope, "client_credentials takes no scope: a client's token is for the tenant's API")
		return st.denial
	}
	return nil
}

func (h clientCredentialsHandler) PopulateTokenEndpointResponse(ctx context.Context, r fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !h.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	st := stateOf(ctx)
	tx, err := st.txn(ctx)
	if err != nil {
		return err
	}
	issued, err := h.svc.IssueClientToken(ctx, tx, st.tenant, st.client)
	if err != nil {
		return err
	}
	st.issued = issued
	return respond(resp, issued, "")
}

func respond(resp fosite.AccessResponder, issued *IssuedToken, _ string) error {
	resp.SetAccessToken(issued.AccessToken)
	resp.SetTokenType("Bearer")
	return nil
}

// exchangeHandler is the RFC 8693 grant for agents, which are public
// clients: their assertion is the proof.
type exchangeHandler struct{ svc *Service }

func (h exchangeHandler) CanHandleTokenEndpointRequest(_ context.Context, r fosite.AccessRequester) bool {
	return r.GetGrantTypes().ExactOne(GrantTokenExchange)
}

// CanSkipClientAuth skips only when no client credentials were sent at
// all, so a bad client assertion on this grant still fails.
func (h exchangeHandler) CanSkipClientAuth(ctx context.Context, r fosite.AccessRequester) bool {
	f := r.GetRequestForm()
	return f.Get("client_assertion") == "" && f.Get("client_assertion_type") == "" && f.Get("client_secret") == ""
}

func (h exchangeHandler) HandleTokenEndpointRequest(ctx context.Context, r fosite.AccessRequester) error {
	if !h.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	st := stateOf(ctx)
	if st.client != nil {
		st.denial = deny(CheckFormat, "token exchange is for agents; clients use client_credentials")
		return st.denial
	}
	f := r.GetRequestForm()
	scope, err := ParseScope(f.Get("scope"))
	if err != nil {
		st.denial = deny(CheckFormat, "scope is malformed")
		st.denial.OAuthError = ErrInvalidScope
		return st.denial
	}
	auds := append(append([]string{}, f["audience"]...), f["resource"]...)
	if len(auds) > maxAudiences {
		st.denial = deny(CheckFormat, "too many audience or resource parameters")
		return st.denial
	}
	if rt := f.Get("requested_token_type"); rt != "" && rt != TokenTypeAccessToken {
		st.denial = deny(CheckFormat, "only access tokens are issued").with(TokenTypeAccessToken, rt)
		return st.denial
	}
	req := ExchangeRequest{
		SubjectToken: f.Get("subject_token"), SubjectTokenType: f.Get("subject_token_type"),
		ActorToken: f.Get("actor_token"), ActorTokenType: f.Get("actor_token_type"),
		Scope: scope, Audiences: auds,
	}
	fast := h.svc.exchangeFirstFast
	if req.SubjectTokenType == TokenTypeAccessToken {
		fast = h.svc.renewFast
	}
	if issued, ok, err := fast(ctx, st.tenant, req); ok {
		st.issued = issued
		return err
	}
	tx, err := st.txn(ctx)
	if err != nil {
		return err
	}
	issued, d, err := h.svc.Exchange(ctx, tx, st.tenant, req)
	if err != nil {
		return err
	}
	if d != nil {
		st.denial = d
		return d
	}
	st.issued = issued
	return nil
}

func (h exchangeHandler) PopulateTokenEndpointResponse(ctx context.Context, r fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !h.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	return respond(resp, stateOf(ctx).issued, TokenTypeAccessToken)
}

// tokenParams are every parameter the token endpoint understands; anything
// else is refused rather than silently ignored.
var tokenParams = map[string]bool{
	"grant_type": true, "scope": true, "audience": true, "resource": true, "client_id": true,
	"client_assertion": true, "client_assertion_type": true, "subject_token": true, "subject_token_type": true,
	"actor_token": true, "actor_token_type": true, "requested_token_type": true,
}

// singleParams may appear once only.
var singleParams = []string{"grant_type", "scope", "client_id", "client_assertion", "client_assertion_type",
	"subject_token", "subject_token_type", "actor_token", "actor_token_type", "requested_token_type"}

// CheckTokenForm refuses unknown and repeated parameters and unsupported
// grants before fosite sees the request.
func CheckTokenForm(form url.Values) *Denial {
	for k := range form {
		if !tokenParams[k] {
			return deny(CheckFormat, "unknown parameter "+strings.ToValidUTF8(clipParam(k), "?"))
		}
	}
	for _, k := range singleParams {
		if len(form[k]) > 1 {
			return deny(CheckFormat, "parameter "+k+" is repeated")
		}
	}
	switch g := form.Get("grant_type"); g {
	case GrantClientCredentials, GrantTokenExchange:
		return nil
	case "":
		return deny(CheckFormat, "grant_type is required")
	default:
		d := deny(CheckFormat, "unsupported grant_type").with(GrantClientCredentials+" or "+GrantTokenExchange, clipParam(g))
		d.OAuthError = ErrUnsupportedGrantType
		return d
	}
}

func clipParam(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// newProvider composes fosite for chit: one provider, every tenant.
func newProvider(s *Service) *fosite.Fosite {
	cfg := &tenantConfig{svc: s, Config: &fosite.Config{
		ClientAuthenticationStrategy: s.authenticateClient,
		// Set every lazily defaulted strategy: fosite writes defaults into a
		// shared config on first read, which races under load.
		ScopeStrategy:            fosite.ExactScopeStrategy,
		AudienceMatchingStrategy: fosite.ExactAudienceMatchingStrategy,
		ClientSecretsHasher:      refusingHasher{},
		JWKSFetcherStrategy:      fosite.NewDefaultJWKSFetcherStrategy(),
	}}
	f := fosite.NewOAuth2Provider(clientStore{s}, cfg)
	cfg.TokenEndpointHandlers.Append(clientCredentialsHandler{s})
	cfg.TokenEndpointHandlers.Append(exchangeHandler{s})
	return f
}

// refusingHasher: chit has no client secrets to compare.
type refusingHasher struct{}

func (refusingHasher) Compare(context.Context, []byte, []byte) error { return fosite.ErrInvalidClient }
func (refusingHasher) Hash(context.Context, []byte) ([]byte, error) {
	return nil, errors.New("chit stores no client secrets")
}

// TokenResponse is a successful token endpoint answer (RFC 6749 §5.1, RFC 8693 §2.2.1).
type TokenResponse struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type,omitempty"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int    `json:"expires_in"`
	Scope           string `json:"scope,omitempty"`
}

// Token serves the token endpoint for tenant t. r's form must already be
// parsed (and checked with CheckTokenForm). A refusal comes back as a
// *Denial; its trace is not yet recorded.
func (s *Service) Token(ctx context.Context, t *tenants.Tenant, r *http.Request) (*TokenResponse, *Denial, error) {
	st := &requestState{svc: s, tenant: t}
	fctx := context.WithValue(ctx, tenantCtx, st)
	ar, err := s.provider.NewAccessRequest(fctx, r, new(fosite.DefaultSession))
	if err == nil {
		_, err = s.provider.NewAccessResponse(fctx, ar)
	}
	if st.tx != nil {
		if err == nil && st.denial == nil {
			err = pgstore.Interpret(st.tx.Commit(ctx))
		} else {
			_ = st.tx.Rollback(ctx)
		}
	}
	if st.denial != nil {
		if st.denial.ClientID == "" && st.client != nil {
			st.denial.ClientID = st.client.ID
		}
		return nil, st.denial, nil
	}
	if err != nil {
		var rfc *fosite.RFC6749Error
		if errors.As(err, &rfc) && rfc.CodeField < 500 {
			d := deny(CheckFormat, rfc.DescriptionField)
			d.OAuthError, d.Status = rfc.ErrorField, rfc.CodeField
			if errors.Is(err, fosite.ErrInvalidClient) {
				d.Reason = "client authentication is required"
			}
			return nil, d, nil
		}
		return nil, nil, err
	}
	issued := st.issued
	resp := &TokenResponse{AccessToken: issued.AccessToken, TokenType: "Bearer", ExpiresIn: issued.ExpiresIn, Scope: issued.Scope.String()}
	if r.PostForm.Get("grant_type") == GrantTokenExchange {
		resp.IssuedTokenType = TokenTypeAccessToken
	}
	return resp, nil, nil
}
