// Package fault is chit's error vocabulary. Domain packages return these
// kinds; only the web package maps them to HTTP statuses, in one table.
package fault

import (
	"errors"
	"fmt"
)

// Kind classifies an error by what the caller can do about it.
type Kind int

const (
	// Internal is anything unexpected; its message never reaches a user.
	Internal Kind = iota
	// Invalid: the input is malformed or out of range.
	Invalid
	// NotFound: no such object in this tenant.
	NotFound
	// Conflict: the object exists already, or was already used.
	Conflict
	// Unauthenticated: no valid credential was presented.
	Unauthenticated
	// Forbidden: the caller is known but not allowed.
	Forbidden
	// Unavailable: a dependency (the database) cannot be reached now.
	Unavailable
)

func (k Kind) String() string {
	switch k {
	case Invalid:
		return "invalid"
	case NotFound:
		return "not_found"
	case Conflict:
		return "conflict"
	case Unauthenticated:
		return "unauthenticated"
	case Forbidden:
		return "forbidden"
	case Unavailable:
		return "unavailable"
	default:
		return "internal"
	}
}

// Error is an error with a kind and a message safe to show to the caller.
// Field names the input at fault, when there is one.
type Error struct {
	Kind    Kind
	Field   string
	Message string
	Err     error // the cause; never shown to the caller
}

func (e *Error) Error() string {
	msg := e.Message
	if e.Field != "" {
		msg = e.Field + ": " + msg
	}
	if e.Err != nil {
		return msg + ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Is lets errors.Is(err, fault.ErrNotFound) match on kind alone.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Field == "" && t.Kind == e.Kind
}

// Sentinels for errors.Is checks by kind.
var (
	ErrInvalid         = &Error{Kind: Invalid}
	ErrNotFound        = &Error{Kind: NotFound}
	ErrConflict        = &Error{Kind: Conflict}
	ErrUnauthenticated = &Error{Kind: Unauthenticated}
	ErrForbidden       = &Error{Kind: Forbidden}
	ErrUnavailable     = &Error{Kind: Unavailable}
)

// New returns an error of kind k with a caller-safe message.
func New(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// InvalidField reports a bad input field.
func InvalidField(field, format string, args ...any) *Error {
	return &Error{Kind: Invalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Wrap attaches a kind and a caller-safe message to a cause.
func Wrap(err error, k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...), Err: err}
}

// KindOf returns the kind of err, Internal when it carries none.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// Message returns the caller-safe message of err: its own for a classified
// error, a fixed text otherwise, so internals never reach a user.
func Message(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Kind != Internal {
		if e.Field != "" {
			return e.Field + ": " + e.Message
		}
		return e.Message
	}
	return "Internal error."
}
