# Kiln: make build writes bin/executor and bin/pipeline; make test runs every test (unit and integration, as root);
# make bench runs the Go benchmarks; make demo runs the pipeline of examples/hello end to end (compile, image, run).
GO ?= go
PKG := ./...

.PHONY: build test unit bench bench-compare demo deps clean k8s

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ ./cmd/executor ./cmd/pipeline

deps:
	bash scripts/deps.sh

# Builds the Kubernetes binaries the kube tests run (once, kept in /var/cache/kiln; ~20 min).
k8s:
	bash integration/k8stools/build.sh

test: deps build k8s
	KILN_EXECUTOR=$(CURDIR)/bin/executor KILN_PIPELINE=$(CURDIR)/bin/pipeline KILN_K8S_BIN=$$(bash integration/k8stools/build.sh) $(GO) test -race -timeout 40m -count=1 $(PKG)

unit:
	$(GO) test -short -count=1 $(PKG)

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
