package chit_test

// Checks compose.yaml with the loader Docker Compose itself uses, so that a broken or changed
// deployment file fails here rather than on someone's `docker compose up`.

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/require"
)

// loadCompose loads compose.yaml as `docker compose` would, with env as the only environment
// (none of the process's own variables, no .env file). Secret files need not exist to load.
func loadCompose(t *testing.T, env ...string) *types.Project {
	t.Helper()
	dir, err := filepath.Abs(".")
	require.NoError(t, err)
	opts, err := cli.NewProjectOptions(
		[]string{filepath.Join(dir, "compose.yaml")},
		cli.WithWorkingDirectory(dir),
		cli.WithEnv(env),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
	)
	require.NoError(t, err)
	project, err := opts.LoadProject(context.Background())
	require.NoError(t, err, "compose.yaml does not load")
	return project
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	require.NoErrorf(t, err, "compose.yaml has no %q service (services: %v)", name, p.ServiceNames())
	return s
}

func env(t *testing.T, s types.ServiceConfig, key string) string {
	t.Helper()
	v, ok := s.Environment[key]
	require.Truef(t, ok && v != nil, "service %q does not set %s", s.Name, key)
	return *v
}

func TestComposeServices(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)

	require.Subset(t, p.ServiceNames(), []string{"postgres", "migrate", "chit"})

	pg := service(t, p, "postgres")
	require.True(t, strings.HasPrefix(pg.Image, "postgres:15"), "postgres image is %q, want postgres:15", pg.Image)
	require.NotNil(t, pg.HealthCheck, "postgres needs a healthcheck: migrate waits for it to be healthy")
	require.False(t, pg.HealthCheck.Disable)
	require.Contains(t, strings.Join(pg.HealthCheck.Test, " "), "pg_isready")
	require.NotEmpty(t, pg.Environment["POSTGRES_PASSWORD"], "postgres needs POSTGRES_PASSWORD")
	require.True(t, slices.ContainsFunc(pg.Volumes, func(v types.ServiceVolumeConfig) bool {
		return v.Type == types.VolumeTypeVolume && v.Target == "/var/lib/postgresql/data"
	}), "postgres keeps its data in a named volume")

	migrate := service(t, p, "migrate")
	require.NotNil(t, migrate.Build, "migrate is built from the repository")
	require.Equal(t, types.ShellCommand{"migrate"}, migrate.Command)
	dep, ok := migrate.DependsOn["postgres"]
	require.True(t, ok, "migrate must depend on postgres")
	require.Equal(t, types.ServiceConditionHealthy, dep.Condition, "migrate must wait for postgres to be healthy")
	require.Contains(t, env(t, migrate, "DATABASE_URL"), "@postgres:5432/")

	chit := service(t, p, "chit")
	require.NotNil(t, chit.Build, "chit is built from the repository")
	require.NotEmpty(t, chit.Command)
	require.Equal(t, "serve", chit.Command[0], "chit's command is %q", chit.Command)
	require.Contains(t, chit.Command, "--demo")
	dep, ok = chit.DependsOn["migrate"]
	require.True(t, ok, "chit must depend on migrate")
	require.Equal(t, types.ServiceConditionCompletedSuccessfully, dep.Condition,
		"chit must start only after migrate completed successfully")
	require.Equal(t, env(t, migrate, "DATABASE_URL"), env(t, chit, "DATABASE_URL"),
		"chit and migrate must use the same database")
}

func TestComposeBuildUsesDockerfile(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	dir, err := filepath.Abs(".")
	require.NoError(t, err)
	for _, name := range []string{"migrate", "chit"} {
		s := service(t, p, name)
		require.NotNilf(t, s.Build, "service %q has no build section", name)
		require.Equalf(t, dir, s.Build.Context, "service %q builds from another context", name)
		dockerfile := s.Build.Dockerfile
		if dockerfile == "" {
			dockerfile = "Dockerfile"
		}
		if !filepath.IsAbs(dockerfile) {
			dockerfile = filepath.Join(s.Build.Context, dockerfile)
		}
		_, err := os.Stat(dockerfile)
		require.NoErrorf(t, err, "service %q: its Dockerfile is missing", name)
	}
}

func TestComposePublishesOnLoopbackOnly(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)

	chit := service(t, p, "chit")
	require.Len(t, chit.Ports, 1, "chit publishes one port")
	port := chit.Ports[0]
	require.Equal(t, "127.0.0.1", port.HostIP, "chit's published port must bind 127.0.0.1 only")
	require.Equal(t, "8080", port.Published)
	require.EqualValues(t, 8080, port.Target)
	require.Contains(t, chit.Command, "0.0.0.0:8080", "inside its container chit listens on all interfaces, port 8080")

	for _, s := range p.Services {
		for _, port := range s.Ports {
			require.Equalf(t, "127.0.0.1", port.HostIP,
				"service %q publishes port %s on %q: publish on 127.0.0.1 only", s.Name, port.Published, port.HostIP)
		}
	}
}

func TestComposeKeyEncryptionKeySecret(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)

	chit := service(t, p, "chit")
	require.Equal(t, "/run/secrets/chit_kek", env(t, chit, "CHIT_KEK_FILE"))
	require.True(t, slices.ContainsFunc(chit.Secrets, func(s types.ServiceSecretConfig) bool {
		return s.Source == "chit_kek" && (s.Target == "" || s.Target == "chit_kek" || s.Target == "/run/secrets/chit_kek")
	}), "chit must mount the chit_kek secret at /run/secrets/chit_kek")

	secret, ok := p.Secrets["chit_kek"]
	require.True(t, ok, "compose.yaml must declare the chit_kek secret")
	dir, err := filepath.Abs(".")
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, ".data", "kek"), secret.File,
		"the chit_kek secret comes from .data/kek, the file `make kek` creates")
}

func TestComposeInterpolation(t *testing.T) {
	t.Parallel()
	p := loadCompose(t,
		"CHIT_BASE_URL=https://chit.example.test",
		"POSTGRES_PASSWORD=s3cret",
	)

	chit := service(t, p, "chit")
	i := slices.Index(chit.Command, "--base-url")
	require.GreaterOrEqual(t, i, 0, "chit's command has no --base-url")
	require.Less(t, i+1, len(chit.Command))
	require.Equal(t, "https://chit.example.test", chit.Command[i+1], "CHIT_BASE_URL must set --base-url")

	require.Equal(t, "s3cret", env(t, service(t, p, "postgres"), "POSTGRES_PASSWORD"))
	require.Contains(t, env(t, chit, "DATABASE_URL"), ":s3cret@postgres:5432/",
		"POSTGRES_PASSWORD must reach the database URL")

	// Without the variable, the documented default.
	def := service(t, loadCompose(t), "chit")
	i = slices.Index(def.Command, "--base-url")
	require.GreaterOrEqual(t, i, 0)
	require.Equal(t, "http://localhost:8080", def.Command[i+1])
}
