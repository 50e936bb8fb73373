package dockerfile_test

import (
	"fmt"
	"log"

	"github.com/kilnbuild/kiln/dockerfile"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// Parse a multi-stage Dockerfile, list its stages and resolve their bases, then ask which
// stages a target needs.
func ExampleParse() {
	src := dockerfile.Source{Name: "Dockerfile", Data: []byte(`ARG GO_VERSION=1.22
FROM golang:${GO_VERSION} AS build
COPY . /src
RUN go build -o /out/app ./cmd/app

FROM busybox AS debug
COPY --from=build /out/app /app

FROM scratch AS release
COPY --from=build /out/app /app
ENTRYPOINT ["/app"]
`)}
	df, err := dockerfile.Parse(src)
	if err != nil {
		log.Fatal(err)
	}
	// The meta scope: ARGs before the first FROM, with build args applied.
	v := "1.23"
	meta, err := df.Meta(dockerfile.BuildArgs{"GO_VERSION": &v}, dockerfile.Platform{}, dockerfile.Platform{})
	if err != nil {
		log.Fatal(err)
	}
	for i, st := range df.Stages {
		base, err := df.BaseOf(i, meta)
		if err != nil {
			log.Fatal(err)
		}
		from := base.Image
		if base.Scratch {
			from = "scratch"
		}
		fmt.Printf("stage %d %q (line %d): FROM %s, %d instructions\n", st.Index, st.Name, st.Line, from, len(st.Commands))
	}
	needed, err := df.StagesFor("release", meta)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("release needs stages", needed)
	// Output:
	// stage 0 "build" (line 2): FROM golang:1.23, 2 instructions
	// stage 1 "debug" (line 6): FROM busybox, 1 instructions
	// stage 2 "release" (line 9): FROM scratch, 2 instructions
	// release needs stages [0 2]
}

// Expand the instructions of a stage in its scope (ENV from the base image, then the ARGs the
// stage declares, build args winning over defaults), as the builder does before executing each.
func ExampleDockerfile_Expand() {
	df, err := dockerfile.Parse(dockerfile.Source{Name: "Dockerfile", Data: []byte(`FROM alpine
ARG VERSION=dev
COPY app-${VERSION}.tar.gz ${APP_HOME}/
`)})
	if err != nil {
		log.Fatal(err)
	}
	meta, err := df.Meta(nil, dockerfile.Platform{}, dockerfile.Platform{})
	if err != nil {
		log.Fatal(err)
	}
	v := "2.0"
	scope := dockerfile.NewScope([]string{"APP_HOME=/opt/app"}, meta, dockerfile.BuildArgs{"VERSION": &v})
	for _, raw := range df.Stages[0].Commands {
		cmd, err := df.Expand(raw, scope)
		if err != nil {
			log.Fatal(err)
		}
		switch cmd := cmd.(type) {
		case *instructions.ArgCommand:
			for _, a := range cmd.Args {
				scope.Declare(a)
			}
			fmt.Println("ARG VERSION ->", scope.Args()["VERSION"])
		case *instructions.CopyCommand:
			fmt.Println("COPY", cmd.SourcePaths, "->", cmd.DestPath)
		}
	}
	// Output:
	// ARG VERSION -> 2.0
	// COPY [app-2.0.tar.gz] -> /opt/app/
}
