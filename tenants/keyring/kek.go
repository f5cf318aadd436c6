package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// KEK is the key-encryption key that seals tenants' private signing keys at
// rest (AES-256-GCM). Only its ID — a hash, not the key — is ever stored.
type KEK struct {
	id   string
	aead cipher.AEAD
}

// KEKSize is the length of a key-encryption key in bytes.
const KEKSize = 32

// NewKEK builds a KEK from raw key bytes.
func NewKEK(raw []byte) (*KEK, error) {
	if len(raw) != KEKSize {
		return nil, fmt.Errorf("key-encryption key must be %d bytes, got %d", KEKSize, len(raw))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(append([]byte("chit kek id\x00"), raw...))
	return &KEK{id: hex.EncodeToString(sum[:8]), aead: aead}, nil
}

// LoadKEK reads a KEK file: the key's 32 bytes in standard base64 on one line.
func LoadKEK(path string) (*KEK, error) {
	if path == "" {
		return nil, errors.New("CHIT_KEK_FILE is not set: it must name the key-encryption key file")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key-encryption key: %w", err)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, fmt.Errorf("key-encryption key file %s is not base64", path)
	}
	return NewKEK(raw)
}

// GenerateKEKFile writes a new random KEK to path, readable by its owner only.
// It refuses to overwrite an existing file.
func GenerateKEKFile(path string) error {
	raw := make([]byte, KEKSize)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(raw) + "\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ID identifies the KEK so a sealed key names the KEK that can open it.
func (k *KEK) ID() string { return k.id }

// String never shows key material.
func (k *KEK) String() string { return "KEK(" + k.id + ")" }

// seal encrypts plaintext bound to aad; the nonce is stored in front.
func (k *KEK) seal(plaintext, aad []byte) ([]byte, error) {
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return k.aead.Seal(nonce, nonce, plaintext, aad), nil
}

// open decrypts what seal produced for the same aad.
func (k *KEK) open(sealed, aad []byte) ([]byte, error) {
	n := k.aead.NonceSize()
	if len(sealed) < n+k.aead.Overhead() {
		return nil, errors.New("sealed key too short")
	}
	return k.aead.Open(nil, sealed[:n], sealed[n:], aad)
}
