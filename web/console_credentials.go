package web

import "github.com/labstack/echo/v4"

// credentialPages are the console's views of credentials: overview,
// agents, tasks and their lineage, tokens, denials and revocations.
func (s *Server) credentialPages(g *echo.Group) {}
