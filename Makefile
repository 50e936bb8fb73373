# Kiln: make build writes bin/executor, bin/pipeline and bin/warmer; make test runs every test (unit and integration, as root),
# then every fuzz target briefly; make fuzz runs every fuzz target for FUZZTIME (default 30s) each;
# make bench runs the Go benchmarks; make demo runs the pipeline of examples/hello end to end (compile, image, run).
GO ?= go
PKG := ./...

.PHONY: build test unit fuzz fuzz-smoke bench bench-compare demo deps clean k8s

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ ./cmd/executor ./cmd/pipeline ./cmd/warmer

deps:
	bash scripts/deps.sh

# Builds the Kubernetes binaries the kube tests run (once, kept in /var/cache/kiln; ~20 min).
k8s:
	bash integration/k8stools/build.sh

test: deps build k8s
	KILN_EXECUTOR=$(CURDIR)/bin/executor KILN_PIPELINE=$(CURDIR)/bin/pipeline KILN_WARMER=$(CURDIR)/bin/warmer KILN_K8S_BIN=$$(bash integration/k8stools/build.sh) $(GO) test -race -timeout 40m -count=1 $(PKG)
	$(MAKE) fuzz-smoke

unit:
	$(GO) test -short -count=1 $(PKG)

# Every fuzz target (scripts/fuzz.sh finds each func FuzzXxx), one after the other, FUZZTIME each;
# a crash's input is written to the package's testdata/fuzz/<Target>/ and fails the run.
# fuzz-smoke is the short run make test (CI) does: 3s each, about two minutes with the builds.
FUZZTIME ?= 30s
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh

fuzz-smoke:
	GO=$(GO) FUZZTIME=3s bash scripts/fuzz.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./snapshot/... ./builder/...

# Compares the executor with buildah on ../shared/bench workloads (needs that folder's setup.sh).
bench-compare: build
	python3 ../shared/bench/run.py bin/executor

demo: deps build
	bash scripts/demo.sh

clean:
	rm -rf bin

# Builds deploy/Dockerfile with the executor itself in a throwaway root (scripts/pod.sh) into
# bin/image-$(TARGET).tar; see deploy/README.md. TARGET=executor|debug, IMAGE names the image.
.PHONY: image
image: build
	bash scripts/pod.sh $(CURDIR)/bin/executor $(CURDIR) --kaniko-dir /kiln-build --context dir:///workspace --dockerfile deploy/Dockerfile --target $(or $(TARGET),executor) --no-push --destination $(or $(IMAGE),kiln/executor):$(or $(TARGET),executor) --tar-path /workspace/bin/image-$(or $(TARGET),executor).tar $(IMAGE_ARGS)
