package dockerfile

import (
	"reflect"
	"strings"
	"testing"
)

const multiStage = `ARG GO=1.22
FROM golang:${GO} AS deps
RUN go mod download
FROM deps AS build
RUN go build -o /app
FROM alpine AS unused
RUN echo never
FROM busybox AS assets
RUN mkdir /assets
FROM scratch AS final
COPY --from=build /app /app
COPY --from=3 /assets /assets
FROM final AS withcache
RUN --mount=type=cache,target=/c,from=unused true
FROM debian AS image-copy
COPY --from=nginx:latest /etc/nginx /etc/nginx
`

func TestStagesFor(t *testing.T) {
	d := mustParse(t, multiStage)
	meta, err := d.Meta(nil, Platform{}, Platform{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		target string
		want   []int
	}{
		{"final", []int{0, 1, 3, 4}},           // FROM chain + COPY --from name and index; "unused" skipped
		{"FINAL", []int{0, 1, 3, 4}},           // case-insensitive
		{"4", []int{0, 1, 3, 4}},               // numeric index
		{"build", []int{0, 1}},                 // FROM earlier stage
		{"withcache", []int{0, 1, 2, 3, 4, 5}}, // RUN --mount from pulls in "unused"
		{"", []int{6}},                         // last stage; COPY --from an image is no stage
		{"unused", []int{2}},
	}
	for _, tt := range tests {
		got, err := d.StagesFor(tt.target, meta)
		if err != nil {
			t.Errorf("StagesFor(%q): %v", tt.target, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("StagesFor(%q) = %v, want %v", tt.target, got, tt.want)
		}
	}
	_, err = d.StagesFor("nope", meta)
	if err == nil || !strings.Contains(err.Error(), `target stage "nope" not found`) ||
		!strings.Contains(err.Error(), "deps, build, unused, assets, final, withcache, image-copy") {
		t.Errorf("unknown target error = %v", err)
	}
	if _, err := d.StagesFor("7", meta); err == nil {
		t.Error("out-of-range index target accepted")
	}
}

func TestStagesForExpandsFrom(t *testing.T) {
	d := mustParse(t, `ARG SRC=one
FROM busybox AS one
FROM busybox AS two
FROM scratch
COPY --from=${SRC} /x /x
`)
	for _, tc := range []struct {
		args BuildArgs
		want []int
	}{
		{nil, []int{0, 2}},
		{BuildArgs{"SRC": ptr("two")}, []int{1, 2}},
		{BuildArgs{"SRC": ptr("1")}, []int{1, 2}},
	} {
		meta, err := d.Meta(tc.args, Platform{}, Platform{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.StagesFor("", meta)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("args %v: got %v, %v; want %v", tc.args, got, err, tc.want)
		}
	}
}

func TestStagesForForwardReference(t *testing.T) {
	for _, text := range []string{
		"FROM busybox AS a\nCOPY --from=b /x /x\nFROM busybox AS b\n",
		"FROM busybox AS a\nCOPY --from=1 /x /x\nFROM busybox AS b\n",
		"FROM busybox AS a\nCOPY --from=0 /x /x\n",
	} {
		d := mustParse(t, text)
		_, err := d.StagesFor("a", NewVars())
		if err == nil || !strings.HasPrefix(err.Error(), "Dockerfile:2: --from=") {
			t.Errorf("%q: err = %v", text, err)
		}
	}
}

func TestBaseOf(t *testing.T) {
	d := mustParse(t, `ARG REG=docker.io
ARG PLAT=linux/arm64
FROM --platform=$PLAT ${REG}/library/alpine:3 AS base
FROM Base AS child
FROM scratch
FROM later
FROM busybox AS later
FROM $EMPTY
FROM --platform=bogus alpine
`)
	meta, err := d.Meta(nil, Platform{}, Platform{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		i    int
		want Base
	}{
		{0, Base{Stage: -1, Image: "docker.io/library/alpine:3", Platform: "linux/arm64"}},
		{1, Base{Stage: 0}},
		{2, Base{Stage: -1, Scratch: true}},
		{3, Base{Stage: -1, Image: "later"}}, // only earlier stages count
	}
	for _, tt := range tests {
		got, err := d.BaseOf(tt.i, meta)
		if err != nil || got != tt.want {
			t.Errorf("BaseOf(%d) = %+v, %v; want %+v", tt.i, got, err, tt.want)
		}
	}
	if _, err := d.BaseOf(5, meta); err == nil || !strings.HasPrefix(err.Error(), "Dockerfile:8: FROM $EMPTY: base name expands to an empty string") {
		t.Errorf("empty base: %v", err)
	}
	if _, err := d.BaseOf(6, meta); err == nil || !strings.HasPrefix(err.Error(), "Dockerfile:9: FROM --platform=bogus") {
		t.Errorf("bad platform: %v", err)
	}
	if _, err := d.BaseOf(9, meta); err == nil {
		t.Error("out of range stage accepted")
	}
}

func ptr(s string) *string { return &s }

func TestFromStage(t *testing.T) {
	d := mustParse(t, "FROM a AS one\nFROM b AS two\nFROM c AS three\n")
	tests := []struct {
		from    string
		idx     int
		isStage bool
		wantErr bool
	}{
		{"one", 0, true, false},
		{"TWO", 1, true, false},
		{"0", 0, true, false},
		{"1", 1, true, false},
		{"2", 0, false, true},     // current stage
		{"three", 0, false, true}, // current stage by name
		{"alpine:3", -1, false, false},
	}
	for _, tt := range tests {
		idx, isStage, err := d.FromStage(tt.from, 2)
		if (err != nil) != tt.wantErr || (!tt.wantErr && (idx != tt.idx || isStage != tt.isStage)) {
			t.Errorf("FromStage(%q) = %d, %v, %v", tt.from, idx, isStage, err)
		}
	}
}

func TestVars(t *testing.T) {
	v := NewVars("A", "1", "B", "2", "A", "3")
	if got := v.Keys(); !reflect.DeepEqual(got, []string{"A", "B"}) {
		t.Errorf("Keys = %q", got)
	}
	if got := v.Map(); !reflect.DeepEqual(got, map[string]string{"A": "3", "B": "2"}) {
		t.Errorf("Map = %v", got)
	}
	var nilVars *Vars
	if _, ok := nilVars.Get("A"); ok || nilVars.Keys() != nil || len(nilVars.Map()) != 0 {
		t.Error("nil Vars not empty")
	}
}
