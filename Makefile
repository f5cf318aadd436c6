# chit — developer entry points. GNU make; every recipe runs as one bash script (set -eu, pipefail).
#
#   make run        build, migrate and serve the demo on $(ADDR), against a local PostgreSQL
#                   (scripts/devdb start run) unless DATABASE_URL is set
#   make demo       in a second terminal while `make run` serves: register the demo's clients
#                   and drive a realistic workload until Ctrl-C (scripts/demo; DEMO_FLAGS='--duration 2m')
#   make test       lint, then go test -race against a throwaway PostgreSQL
#                   (scripts/devdb start test) unless DATABASE_URL is set
#   make lint       gofmt, go vet, staticcheck (and, with CI=true, generated templ code is current)
#   make generate   regenerate templ code
#   make build      bin/chit
#   make kek        create the development key-encryption key .data/kek (done by make run)
#   make db-stop    stop the local PostgreSQL clusters
#   make clean      stop and delete the local clusters, remove bin/ and .data/

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.ONESHELL:
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules --no-builtin-variables

GO ?= go
# Evaluated only when used: the gofmt of the same Go installation.
GOFMT = $(shell $(GO) env GOROOT)/bin/gofmt

ADDR ?= 127.0.0.1:8080
BASE_URL ?= http://$(ADDR)
KEK := .data/kek

.DEFAULT_GOAL := build
.PHONY: build run demo test lint generate kek db-stop clean compose-up bench fuzz

build:
	$(GO) build -o bin/chit ./cmd/chit

# The development key-encryption key: 32 random bytes, base64 on one line, readable by its owner only.
kek: $(KEK)

$(KEK):
	# .data must stay traversable by the postgres OS user (scripts/devdb); files in it are 0600.
	[[ -d .data ]] || mkdir -m 0755 .data
	umask 077
	head -c 32 /dev/urandom | base64 -w 0 > $@.tmp
	echo >> $@.tmp
	chmod 0600 $@.tmp
	mv -f $@.tmp $@

run: build $(KEK)
	DATABASE_URL="$${DATABASE_URL:-$$(scripts/devdb start run)}"
	CHIT_KEK_FILE="$${CHIT_KEK_FILE:-$(CURDIR)/$(KEK)}"
	export DATABASE_URL CHIT_KEK_FILE
	bin/chit migrate
	exec bin/chit serve --demo --addr '$(ADDR)' --base-url '$(BASE_URL)'

# Against the server `make run` serves, over HTTP; the clients' keys stay in .data/demo/.
demo:
	ADDR='$(ADDR)' BASE_URL='$(BASE_URL)' GO='$(GO)' exec scripts/demo $(DEMO_FLAGS)

test: lint
	DATABASE_URL="$${DATABASE_URL:-$$(scripts/devdb start test)}"
	# The browser tests (e2e/) drive this Chromium; installed with apt-get when missing.
	CHIT_CHROMIUM="$$(scripts/chromium)"
	export DATABASE_URL CHIT_CHROMIUM
	$(GO) test -race -count=1 -timeout 10m ./...
	$(MAKE) --no-print-directory fuzz

# A brief fuzzing run of the token endpoint's parameter parsing and of JWT
# parsing (FUZZTIME each; longer runs: make fuzz FUZZTIME=10m).
FUZZTIME ?= 5s
fuzz:
	for target in FuzzParseAssertion FuzzVerifyAccessToken FuzzCheckTokenForm FuzzParseScope; do
		if ! out="$$($(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) ./oauth/ 2>&1)"; then
			echo "$$out" >&2
			exit 1
		fi
		echo "fuzz: $$target ok ($(FUZZTIME))"
	done

lint:
	@if [[ "$${CI:-}" == true ]]; then
		echo "lint: $(GO) tool templ generate (generated code must be committed and current)"
		$(GO) tool templ generate
		changed="$$(git status --porcelain -- '*_templ.go')"
		if [[ -n "$$changed" ]]; then
			echo "lint: generated templ code is not current; run 'make generate' and commit the result:" >&2
			echo "$$changed" >&2
			exit 1
		fi
	fi
	# gofmt: the repository's own Go files (tracked, or new and not ignored), generated templ code aside.
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		mapfile -t files < <(git ls-files --cached --others --exclude-standard -- '*.go' ':(exclude)*_templ.go')
	else
		mapfile -t files < <(find . -name '*.go' ! -name '*_templ.go' ! -path './.data/*' ! -path './bin/*')
	fi
	present=()
	for f in "$${files[@]}"; do
		if [[ -f "$$f" ]]; then present+=("$$f"); fi
	done
	if [[ $${#present[@]} -gt 0 ]]; then
		unformatted="$$('$(GOFMT)' -l "$${present[@]}")"
		if [[ -n "$$unformatted" ]]; then
			echo "lint: these files need gofmt (run: gofmt -w FILE...):" >&2
			echo "$$unformatted" >&2
			exit 1
		fi
	fi
	echo "lint: gofmt ok; $(GO) vet ./..."
	$(GO) vet ./...
	echo "lint: $(GO) tool staticcheck ./..."
	$(GO) tool staticcheck ./...

generate:
	$(GO) tool templ generate

db-stop:
	scripts/devdb stop

clean:
	scripts/devdb destroy
	rm -rf bin .data

# Docker Compose bind-mounts the key file with its host owner and mode (0600), so the chit
# container runs as the invoking user to be able to read it (see compose.yaml).
compose-up: $(KEK)
	CHIT_UID="$$(id -u)" CHIT_GID="$$(id -g)" docker compose up --build

# Go benchmarks and a load run against a real server and the durable local PostgreSQL.
bench:
	scripts/bench
