package web

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/chitdev/chit/internal/fault"
	"github.com/chitdev/chit/oauth"
)

const callerKey = "chit.caller"

// withBearer authenticates the API caller from its bearer token.
func (s *Server) withBearer(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		raw, ok := oauth.BearerToken(c.Request().Header.Get(echo.HeaderAuthorization))
		if !ok {
			c.Response().Header().Set("WWW-Authenticate", `Bearer`)
			return newProblem(http.StatusUnauthorized, "a bearer token is required")
		}
		caller, d, err := s.deps.OAuth.AuthenticateBearer(c.Request().Context(), tenantOf(c), raw)
		if err != nil {
			return err
		}
		if d != nil {
			c.Response().Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			return s.apiError(c, d)
		}
		c.Set(callerKey, caller)
		return next(c)
	}
}

func callerOf(c echo.Context) *oauth.Caller { return c.Get(callerKey).(*oauth.Caller) }

// decodeJSON reads a JSON body strictly: right content type, at most
// MaxBodyBytes, known fields only, one value. A refusal is a recorded
// denial (check format) like any other.
func (s *Server) decodeJSON(c echo.Context, v any) error {
	mt, _, err := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	if err != nil || mt != echo.MIMEApplicationJSON {
		return s.apiError(c, bodyDenial(http.StatusUnsupportedMediaType, "the body must be application/json"))
	}
	if c.Request().ContentLength > MaxBodyBytes {
		return s.apiError(c, bodyDenial(http.StatusRequestEntityTooLarge, "the body is larger than 1 MiB"))
	}
	dec := json.NewDecoder(c.Request().Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if tooLarge(err) {
			return s.apiError(c, bodyDenial(http.StatusRequestEntityTooLarge, "the body is larger than 1 MiB"))
		}
		return s.apiError(c, bodyDenial(http.StatusBadRequest, "malformed JSON body: "+jsonErrorText(err)))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if tooLarge(err) {
			return s.apiError(c, bodyDenial(http.StatusRequestEntityTooLarge, "the body is larger than 1 MiB"))
		}
		return s.apiError(c, bodyDenial(http.StatusBadRequest, "malformed JSON body: trailing data after the object"))
	}
	return nil
}

// bodyDenial refuses a request body that is too large, of the wrong type or malformed.
func bodyDenial(status int, reason string) *oauth.Denial {
	return &oauth.Denial{Check: oauth.CheckFormat, Reason: reason, OAuthError: oauth.ErrInvalidRequest, Status: status}
}

// tooLarge reports whether reading the body hit MaxBodyBytes (limitBody's
// reader, or echo's on the routes it guards).
func tooLarge(err error) bool {
	var maxBytes *http.MaxBytesError
	var he *echo.HTTPError
	return errors.As(err, &maxBytes) || (errors.As(err, &he) && he.Code == http.StatusRequestEntityTooLarge)
}

// jsonErrorText names what was wrong without echoing the input.
func jsonErrorText(err error) string {
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typeErr):
		return "field " + typeErr.Field + " has the wrong type"
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return strings.TrimPrefix(err.Error(), "json: ")
	case errors.Is(err, io.EOF):
		return "empty body"
	default:
		return "not valid JSON"
	}
}

func pathID(c echo.Context, name string) (uuid.UUID, error) {
	id, err := uuid.Parse(c.Param(name))
	if err != nil {
		return uuid.Nil, fault.New(fault.NotFound, "no such %s", strings.TrimSuffix(name, "_id"))
	}
	return id, nil
}

func (s *Server) createTask(c echo.Context) error {
	var p oauth.TaskParams
	if err := s.decodeJSON(c, &p); err != nil {
		return err
	}
	task, err := s.deps.OAuth.CreateTask(c.Request().Context(), tenantOf(c), callerOf(c), p)
	if err != nil {
		return s.apiError(c, err)
	}
	return c.JSON(http.StatusCreated, map[string]any{"task_id": task.ID, "deadline": task.Deadline.UTC().Format(time.RFC3339),
		"scope": task.Scope.String(), "audiences": task.Audiences})
}

type scopeBody struct {
	Scope string `json:"scope"`
}

// optionalScope reads {scope?}; an empty body means "no narrowing".
func (s *Server) optionalScope(c echo.Context) (string, error) {
	if c.Request().ContentLength == 0 {
		return "", nil
	}
	var b scopeBody
	if err := s.decodeJSON(c, &b); err != nil {
		return "", err
	}
	return b.Scope, nil
}

func (s *Server) taskLaunchToken(c echo.Context) error {
	taskID, err := pathID(c, "task_id")
	if err != nil {
		return err
	}
	scope, err := s.optionalScope(c)
	if err != nil {
		return err
	}
	lt, err := s.deps.OAuth.MintLaunchToken(c.Request().Context(), tenantOf(c), callerOf(c), taskID, scope)
	if err != nil {
		return s.apiError(c, err)
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusCreated, lt)
}

func (s *Server) agentLaunchToken(c echo.Context) error {
	agentID, err := pathID(c, "agent_id")
	if err != nil {
		return err
	}
	scope, err := s.optionalScope(c)
	if err != nil {
		return err
	}
	lt, err := s.deps.OAuth.MintSubAgentLaunchToken(c.Request().Context(), tenantOf(c), callerOf(c), agentID, scope)
	if err != nil {
		return s.apiError(c, err)
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusCreated, lt)
}

func (s *Server) challenge(c echo.Context) error {
	var p oauth.ChallengeParams
	if err := s.decodeJSON(c, &p); err != nil {
		return err
	}
	ch, err := s.deps.OAuth.StartRegistration(c.Request().Context(), tenantOf(c), p)
	if err != nil {
		return s.apiError(c, err)
	}
	return c.JSON(http.StatusCreated, ch)
}

func (s *Server) register(c echo.Context) error {
	var p oauth.RegisterParams
	if err := s.decodeJSON(c, &p); err != nil {
		return err
	}
	reg, err := s.deps.OAuth.Register(c.Request().Context(), tenantOf(c), p)
	if err != nil {
		return s.apiError(c, err)
	}
	s.metrics.delegationDepth.Observe(float64(reg.Depth))
	return c.JSON(http.StatusCreated, reg)
}

// heartbeat: authenticating as the agent already recorded it.
func (s *Server) heartbeat(c echo.Context) error {
	agentID, err := pathID(c, "agent_id")
	if err != nil {
		return err
	}
	if callerOf(c).AgentID != agentID {
		return fault.New(fault.NotFound, "no such agent")
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) completeTask(c echo.Context) error {
	taskID, err := pathID(c, "task_id")
	if err != nil {
		return err
	}
	done, err := s.deps.OAuth.CompleteTask(c.Request().Context(), tenantOf(c), callerOf(c), taskID)
	if err != nil {
		return s.apiError(c, err)
	}
	s.metrics.observeCompletion(done)
	return c.JSON(http.StatusOK, map[string]any{"task_id": taskID, "completed": true, "revoked_count": done.Revoked})
}

func (s *Server) denial(c echo.Context) error {
	id, err := pathID(c, "denial_id")
	if err != nil {
		return err
	}
	trace, err := s.deps.OAuth.Denial(c.Request().Context(), tenantOf(c), callerOf(c), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, trace)
}

func (s *Server) revokeLevel(c echo.Context) error {
	var p oauth.RevokeParams
	if err := s.decodeJSON(c, &p); err != nil {
		return err
	}
	res, err := s.deps.OAuth.RevokeLevel(c.Request().Context(), tenantOf(c), callerOf(c), p)
	if err != nil {
		return s.apiError(c, err)
	}
	return c.JSON(http.StatusCreated, res)
}
