// Package oauth is chit's OAuth 2.0 domain: what each tenant's authorization
// server announces and, with the token-exchange work, how it issues,
// introspects and revokes tokens. It knows nothing of HTTP frameworks.
package oauth

// Grant types chit's token endpoint accepts.
const (
	GrantClientCredentials = "client_credentials"
	GrantTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
)

// AuthMethodPrivateKeyJWT is the only client authentication: no shared secrets.
const AuthMethodPrivateKeyJWT = "private_key_jwt"

// SigningAlg is the one JOSE algorithm chit signs and accepts.
const SigningAlg = "EdDSA"

// Endpoint paths under a tenant's issuer URL.
const (
	PathToken      = "/oauth2/token"
	PathIntrospect = "/oauth2/introspect"
	PathRevoke     = "/oauth2/revoke"
	PathJWKS       = "/jwks.json"
)

// ServerMetadata is an RFC 8414 authorization server metadata document.
type ServerMetadata struct {
	Issuer                                     string   `json:"issuer"`
	TokenEndpoint                              string   `json:"token_endpoint"`
	JWKSURI                                    string   `json:"jwks_uri"`
	IntrospectionEndpoint                      string   `json:"introspection_endpoint"`
	RevocationEndpoint                         string   `json:"revocation_endpoint"`
	ResponseTypesSupported                     []string `json:"response_types_supported"`
	GrantTypesSupported                        []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	IntrospectionEndpointAuthMethodsSupported  []string `json:"introspection_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthSigningAlgValues  []string `json:"introspection_endpoint_auth_signing_alg_values_supported"`
	RevocationEndpointAuthMethodsSupported     []string `json:"revocation_endpoint_auth_methods_supported"`
	RevocationEndpointAuthSigningAlgValues     []string `json:"revocation_endpoint_auth_signing_alg_values_supported"`
	// Not registered in RFC 8414 but widely read: the algorithms of issued tokens.
	AccessTokenSigningAlgValuesSupported []string `json:"access_token_signing_alg_values_supported"`
}

// Metadata describes the authorization server whose issuer is issuer.
// chit has no authorization endpoint, so it supports no response types.
func Metadata(issuer string) ServerMetadata {
	algs := []string{SigningAlg}
	methods := []string{AuthMethodPrivateKeyJWT}
	return ServerMetadata{
		Issuer:                            issuer,
		TokenEndpoint:                     issuer + PathToken,
		JWKSURI:                           issuer + PathJWKS,
		IntrospectionEndpoint:             issuer + PathIntrospect,
		RevocationEndpoint:                issuer + PathRevoke,
		ResponseTypesSupported:            []string{},
		GrantTypesSupported:               []string{GrantClientCredentials, GrantTokenExchange},
		TokenEndpointAuthMethodsSupported: methods,
		TokenEndpointAuthSigningAlgValuesSupported: algs,
		IntrospectionEndpointAuthMethodsSupported:  methods,
		IntrospectionEndpointAuthSigningAlgValues:  algs,
		RevocationEndpointAuthMethodsSupported:     methods,
		RevocationEndpointAuthSigningAlgValues:     algs,
		AccessTokenSigningAlgValuesSupported:       algs,
	}
}
