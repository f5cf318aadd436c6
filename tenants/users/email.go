package users

import (
	"net/mail"
	"strings"

	"github.com/chitdev/chit/internal/fault"
)

// Email is a console user's address as typed; Key is how it is looked up.
type Email string

// ParseEmail accepts one plain address (no display name), at most 254
// bytes (RFC 5321 §4.5.3.1.3).
func ParseEmail(s string) (Email, error) {
	s = strings.TrimSpace(s)
	if len(s) < 3 || len(s) > 254 {
		return "", fault.InvalidField("email", "must be an e-mail address of at most 254 characters")
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s || strings.ContainsAny(s, " \t\r\n<>") {
		return "", fault.InvalidField("email", "must be a plain e-mail address like ana@example.com")
	}
	return Email(s), nil
}

// Key is the case-folded form users are looked up by: addresses that differ
// only in case are one user.
func (e Email) Key() string { return strings.ToLower(string(e)) }
