package oauth

import (
	"context"
	"net/http"
	"net/url"

	"github.com/jackc/pgx/v5"

	"github.com/chitdev/chit/internal/pgstore"
	"github.com/chitdev/chit/tenants"
)

// Introspection is an RFC 7662 response. An inactive token says nothing
// else, whatever the reason.
type Introspection struct {
	Active    bool     `json:"active"`
	Scope     string   `json:"scope,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	TokenType string   `json:"token_type,omitempty"`
	Exp       int64    `json:"exp,omitempty"`
	Iat       int64    `json:"iat,omitempty"`
	Nbf       int64    `json:"nbf,omitempty"`
	Sub       string   `json:"sub,omitempty"`
	Aud       []string `json:"aud,omitempty"`
	Iss       string   `json:"iss,omitempty"`
	Jti       string   `json:"jti,omitempty"`
	Act       *Actor   `json:"act,omitempty"`
	TaskID    string   `json:"task_id,omitempty"`
	AgentID   string   `json:"agent_id,omitempty"`
}

// Introspect authenticates the calling resource server (a client assertion,
// or its own access token as a bearer) and reports whether token is live
// now: signature, expiry and every level of revocation.
func (s *Service) Introspect(ctx context.Context, t *tenants.Tenant, r *http.Request) (*Introspection, *Denial, error) {
	form := r.PostForm
	for k, v := range form {
		if k != "token" && k != "token_type_hint" && k != "client_assertion" && k != "client_assertion_type" && k != "client_id" {
			return nil, deny(CheckFormat, "unknown parameter "+clipParam(k)), nil
		}
		if len(v) > 1 {
			return nil, deny(CheckFormat, "parameter "+clipParam(k)+" is repeated"), nil
		}
	}
	raw := form.Get("token")
	var client *Client
	var d *Denial
	// The subject token is checked offline first; its live state is read in
	// the same round trip as the bearer's, when there is a bearer.
	var claims *AccessClaims
	var subject *liveState
	if raw != "" {
		if c, sd := s.verifyAccess(ctx, nil, t, raw); sd == nil {
			claims = c
		}
	}
	if bearer, ok := BearerToken(r.Header.Get("Authorization")); ok && form.Get("client_assertion") == "" {
		// A resource server may present its own client_credentials token,
		// which spares it a signed assertion (and chit a write) per call.
		b := pgstore.NewTenantBatch(t.ID)
		bc := s.queueBearer(ctx, t, bearer, b)
		if bc.denial != nil {
			bc.denial.OAuthError = ErrInvalidClient
			return nil, bc.denial, nil
		}
		if claims != nil {
			subject = &liveState{}
			b.Queue(liveQuery, jtiOf(claims)).QueryRow(subject.scan)
		}
		if err := s.db.SendBatch(ctx, b); err != nil {
			return nil, nil, err
		}
		caller, cd := bc.result()
		if cd != nil {
			cd.OAuthError = ErrInvalidClient
			return nil, cd, nil
		}
		if caller.IsAgent() {
			return nil, clientDenial(CheckPolicy, "agents cannot introspect"), nil
		}
		client = &Client{ID: caller.ClientID, Kind: caller.Kind}
	} else {
		err := s.db.InTenantTx(ctx, t.ID, func(tx pgx.Tx) error {
			client, d = s.AuthenticateClient(ctx, tx, t, form.Get("client_assertion_type"), form.Get("client_assertion"))
			if d != nil {
				return d
			}
			return nil
		})
		if d != nil {
			return nil, d, nil
		}
		if err != nil {
			return nil, nil, err
		}
	}
	if client.Kind != KindResourceServer {
		d := &Denial{Check: CheckPolicy, Reason: "only resource-server clients may introspect", OAuthError: ErrUnauthorizedClient,
			Status: http.StatusForbidden, ClientID: client.ID}
		return nil, d, nil
	}
	if g := s.checkClient(t, client.ID, CapIntrospect); !g.Allowed {
		d := &Denial{Check: CheckPolicy, Reason: "the client holds no introspect rule", OAuthError: ErrUnauthorizedClient,
			Status: http.StatusForbidden, ClientID: client.ID, Expected: "an introspect rule", Presented: "client " + client.ID,
			Rule: ruleTrace(g)}
		return nil, d, nil
	}
	if raw == "" {
		return nil, deny(CheckFormat, "token is required"), nil
	}
	if claims == nil {
		return &Introspection{Active: false}, nil, nil
	}
	if subject == nil {
		var err error
		if subject, err = s.liveNow(ctx, t, jtiOf(claims)); err != nil {
			return nil, nil, err
		}
	}
	if subject.denial() != nil {
		return &Introspection{Active: false}, nil, nil
	}
	return &Introspection{Active: true, Scope: claims.Scope, ClientID: claims.ClientID, TokenType: "Bearer",
		Exp: claims.Expiry, Iat: claims.IssuedAt, Nbf: claims.NotBefore, Sub: claims.Subject, Aud: claims.Audience,
		Iss: claims.Issuer, Jti: claims.ID, Act: claims.Act, TaskID: claims.TaskID, AgentID: claims.AgentID}, nil, nil
}

// Revoke serves RFC 7009 for tenant t: client-authenticated.
func (s *Service) Revoke(ctx context.Context, t *tenants.Tenant, form url.Values) (*Denial, error) {
	for k, v := range form {
		if k != "token" && k != "token_type_hint" && k != "client_assertion" && k != "client_assertion_type" && k != "client_id" {
			return deny(CheckFormat, "unknown parameter "+clipParam(k)), nil
		}
		if len(v) > 1 {
			return deny(CheckFormat, "parameter "+clipParam(k)+" is repeated"), nil
		}
	}
	if form.Get("token") == "" {
		return deny(CheckFormat, "token is required"), nil
	}
	var d *Denial
	err := s.db.InTenantTx(ctx, t.ID, func(tx pgx.Tx) error {
		client, cd := s.AuthenticateClient(ctx, tx, t, form.Get("client_assertion_type"), form.Get("client_assertion"))
		if cd != nil {
			d = cd
			return cd
		}
		var err error
		if d, err = s.RevokeToken(ctx, tx, t, client, form.Get("token")); err != nil {
			return err
		}
		if d != nil {
			return d
		}
		return nil
	})
	if d != nil {
		return d, nil
	}
	return nil, err
}
