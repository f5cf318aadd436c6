package keyring

import (
	"crypto"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"log/slog"
)

// Signer signs with one tenant key. It implements crypto.Signer and never
// reveals the private key: not through fmt, slog or encoding/json.
type Signer struct {
	kid  string
	priv ed25519.PrivateKey
}

// KeyID is the kid of the key, for the JOSE header.
func (s *Signer) KeyID() string { return s.kid }

// Algorithm is the JOSE algorithm the signer produces.
func (s *Signer) Algorithm() string { return Algorithm }

// Public returns the ed25519.PublicKey.
func (s *Signer) Public() crypto.PublicKey { return s.priv.Public() }

// Sign signs message (Ed25519 signs the message itself; opts must be crypto.Hash(0)).
func (s *Signer) Sign(rand io.Reader, message []byte, opts crypto.SignerOpts) ([]byte, error) {
	return s.priv.Sign(rand, message, opts)
}

// SignMessage is Sign for the common case, without the interface's ceremony.
func (s *Signer) SignMessage(message []byte) []byte { return ed25519.Sign(s.priv, message) }

func (s *Signer) String() string               { return "keyring.Signer{kid:" + s.kid + "}" }
func (s *Signer) GoString() string             { return s.String() }
func (s *Signer) LogValue() slog.Value         { return slog.StringValue(s.String()) }
func (s *Signer) MarshalJSON() ([]byte, error) { return json.Marshal(map[string]string{"kid": s.kid}) }

// NewEphemeralSigner makes a signer whose key exists only in memory and is
// never stored: for tests and benchmarks of what signs and verifies.
func NewEphemeralSigner() (*Signer, ed25519.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, nil, err
	}
	kid, err := KeyID(pub)
	if err != nil {
		return nil, nil, err
	}
	return &Signer{kid: kid, priv: priv}, pub, nil
}
