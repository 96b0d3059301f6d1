# Ferry: the two commands are `make demo` and `make test`; both set up the machine first.
SWIFT ?= swift
BUILD_FLAGS ?=
TEST_FLAGS ?=

.PHONY: all setup build release demo test format format-check fuzz bench sandbox-clean clean help

all: build

help:
	@echo "make demo    set up this machine, build Ferry, start the sandbox and run the demo"
	@echo "make test    set up this machine, build and run every test, check formatting"
	@echo "make build   debug build;  make release: optimised build"
	@echo "make format  format the sources"
	@echo "make fuzz    build the libFuzzer targets and run each for SECONDS (default 60)"
	@echo "make bench   release build, then every benchmark (figures in docs/BENCHMARKS.md)"

setup:
	@./scripts/setup.sh

build: setup
	$(SWIFT) build $(BUILD_FLAGS)

release: setup
	$(SWIFT) build -c release $(BUILD_FLAGS)

demo: setup
	@./scripts/demo.sh $(ARGS)

test: setup format-check
	$(SWIFT) build --build-tests $(BUILD_FLAGS)
	@./scripts/test.sh $(TEST_FLAGS)

fuzz: setup
	@./scripts/fuzz.sh $(or $(SECONDS),60)

bench: setup release
	@./scripts/setup.sh bench
	.build/release/ferry bench redis
	.build/release/ferry bench sync
	.build/release/ferry bench redis-sync
	.build/release/ferry bench sqlserver
	.build/release/ferry bench ha
	.build/release/ferry bench backup
	.build/release/ferry bench extract
	.build/release/ferry bench api

format:
	$(SWIFT) format format -i -r -p Sources Tests Benchmarks Package.swift

openapi:
	scripts/openapi.sh

format-check:
	@$(SWIFT) format lint -r -s -p Sources Tests Package.swift || { echo "format: run \`make format\` and commit the result" >&2; exit 1; }

sandbox-clean:
	-@[ -x .build/debug/ferry ] && .build/debug/ferry sandbox down || true
	-@rm -rf .ferry/test

clean: sandbox-clean
	rm -rf .build .ferry
