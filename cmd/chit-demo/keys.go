package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// The demo's clients live in one directory (scripts/demo uses
// .data/demo/TENANT), one set of files per client name:
//
//	NAME.jwk        the private key, a JWK readable by its owner only
//	NAME.pub.jwk    the public key, as `chit client create --jwk` takes it
//	NAME.client_id  the client_id chit gave it, written last
func privateKeyPath(dir, name string) string { return filepath.Join(dir, name+".jwk") }
func publicKeyPath(dir, name string) string  { return filepath.Join(dir, name+".pub.jwk") }
func clientIDPath(dir, name string) string   { return filepath.Join(dir, name+".client_id") }

// writeKeyPair makes a new Ed25519 key pair and writes the private JWK
// (0600) and the public JWK, each replacing any earlier file at once.
func writeKeyPair(privatePath, publicPath string) error {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	privJWK, err := jose.JSONWebKey{Key: priv, Algorithm: string(jose.EdDSA)}.MarshalJSON()
	if err != nil {
		return err
	}
	pubJWK, err := jose.JSONWebKey{Key: pub, Algorithm: string(jose.EdDSA)}.MarshalJSON()
	if err != nil {
		return err
	}
	if err := writeFileAtomic(privatePath, append(privJWK, '\n'), 0o600); err != nil {
		return err
	}
	return writeFileAtomic(publicPath, append(pubJWK, '\n'), 0o644)
}

// writeFileAtomic writes data to a temporary file created with mode and
// renames it over path, so a reader never sees half a key.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// registered is a client the demo set up: its id and private key.
type registered struct {
	Name string
	ID   string
	Key  ed25519.PrivateKey
}

// loadClient reads a registered client's id and private key from dir.
func loadClient(dir, name string) (registered, error) {
	id, err := os.ReadFile(clientIDPath(dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return registered{}, fmt.Errorf("client %s is not set up in %s: run scripts/demo (make demo), which registers it", name, dir)
	} else if err != nil {
		return registered{}, err
	}
	key, err := readPrivateKey(privateKeyPath(dir, name))
	if err != nil {
		return registered{}, err
	}
	c := registered{Name: name, ID: strings.TrimSpace(string(id)), Key: key}
	if c.ID == "" {
		return registered{}, fmt.Errorf("%s is empty", clientIDPath(dir, name))
	}
	return c, nil
}

// readPrivateKey reads an Ed25519 private JWK, refusing one others can read.
func readPrivateKey(path string) (ed25519.PrivateKey, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable by others (mode %v): chmod 600 it", path, info.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(data); err != nil {
		return nil, fmt.Errorf("%s is not a JWK", path) // the parser's message could quote key material
	}
	priv, ok := k.Key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s does not hold an Ed25519 private key", path)
	}
	return priv, nil
}
