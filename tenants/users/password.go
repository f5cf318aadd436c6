package users

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/chitdev/chit/internal/fault"
)

// Password bounds: long enough to resist guessing, short enough that
// hashing an attacker's input costs a fixed amount.
const (
	MinPasswordLen = 12
	MaxPasswordLen = 256
)

// argon2id parameters (RFC 9106 §4, OWASP's 19 MiB / 2 passes / 1 lane
// profile). Kept in each hash, so they can be raised without invalidating
// stored hashes.
type argonParams struct {
	memoryKiB uint32
	passes    uint32
	lanes     uint8
}

var defaultParams = argonParams{memoryKiB: 19 * 1024, passes: 2, lanes: 1}

const (
	saltLen = 16
	keyLen  = 32
)

// CheckPassword refuses passwords a console should not accept.
func CheckPassword(pw string) error {
	n := utf8.RuneCountInString(pw)
	switch {
	case !utf8.ValidString(pw):
		return fault.InvalidField("password", "must be valid UTF-8")
	case n < MinPasswordLen:
		return fault.InvalidField("password", "must be at least %d characters", MinPasswordLen)
	case len(pw) > MaxPasswordLen:
		return fault.InvalidField("password", "must be at most %d bytes", MaxPasswordLen)
	}
	return nil
}

// hashPassword returns the PHC string form of argon2id(pw) with a fresh salt.
func hashPassword(pw string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	p := defaultParams
	key := argon2.IDKey([]byte(pw), salt, p.passes, p.memoryKiB, p.lanes, keyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.memoryKiB, p.passes, p.lanes,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// verifyPassword reports whether pw matches a PHC argon2id hash, in time
// independent of where they differ. A malformed hash matches nothing.
func verifyPassword(pw, encoded string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return false
	}
	var p argonParams
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.memoryKiB, &p.passes, &p.lanes); err != nil ||
		p.memoryKiB == 0 || p.memoryKiB > 256*1024 || p.passes == 0 || p.passes > 16 || p.lanes == 0 {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return false
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) < 16 || len(want) > 64 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, p.passes, p.memoryKiB, p.lanes, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}
