# Sluice build, run and test entry points. See README.md.
GO ?= go
BIN := bin/sluice
PKGS := ./...

.PHONY: build run test bench lint deps clean

build:
	$(GO) build -o $(BIN) ./cmd/sluice

run: build
	./$(BIN) serve --data-dir ./data

# Tests need kcat for the client round trips; scripts/deps.sh installs what is missing.
test: build
	./scripts/deps.sh
	$(GO) vet $(PKGS)
	$(GO) test -race -timeout 20m -count=1 $(PKGS)

bench: build
	./scripts/bench.sh

lint:
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi

clean:
	rm -rf bin
