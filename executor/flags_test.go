package executor

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseFlagsKanikoDefaults(t *testing.T) {
	t.Setenv("KANIKO_DIR", "")
	t.Setenv("KANIKO_NO_PUSH", "")
	t.Setenv(envRegistryMirror, "")
	t.Setenv(envRegistryMap, "")
	c, err := ParseFlags([]string{"--destination=reg.example/app:1"})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Dockerfile: "Dockerfile", Context: "/workspace/", Destinations: []string{"reg.example/app:1"},
		SnapshotMode: "full", IgnoreVarRun: true, KanikoDir: "/kaniko", Verbosity: "info", LogFormat: "color",
		Compression: "gzip", CompressionLevel: -1, MaxParallelStages: 2, CacheRunLayers: true, CompressedCaching: true,
		CacheDir: "/cache", CacheTTL: 336 * time.Hour, CacheDirLayers: true, WhitelistVarRun: true,
	}
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", *c, want)
	}
}

func TestParseFlagsDeprecatedSpellings(t *testing.T) {
	c, err := ParseFlags([]string{"--no-push", "--snapshotMode=redo", "--customPlatform=linux/arm64",
		"--tarPath=/out/img.tar", "--whitelist-var-run=false", "-b", "my-bucket"})
	if err != nil {
		t.Fatal(err)
	}
	if c.SnapshotMode != "redo" || c.CustomPlatform != "linux/arm64" || c.TarPath != "/out/img.tar" ||
		c.IgnoreVarRun || c.Context != "gs://my-bucket" {
		t.Errorf("deprecated spellings not applied: %+v", c)
	}
	if len(c.Warnings) != 5 || !strings.Contains(c.Warnings[0], "--snapshotMode is deprecated") {
		t.Errorf("warnings = %q, want one per deprecated flag", c.Warnings)
	}
}

func TestParseFlagsErrorsNameTheFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--no-push", "--cahce=true"}, "unknown flag: --cahce"},
		{[]string{"--no-push", "--push-retry=many"}, `"many" for "--push-retry"`},
		{[]string{"--no-push", "--cache", "true"}, `unexpected argument "true"`},
		{[]string{"--no-push", "--compression=lz4"}, "--compression=lz4: must be gzip or zstd"},
		{[]string{"--no-push", "--snapshot-mode=fast"}, "--snapshot-mode=fast"},
		{[]string{"--no-push", "--label", "nokey"}, `--label "nokey": must be KEY=VALUE`},
		{[]string{"--no-push", "--cache", "--cache-dir="}, "--cache with --no-push needs --cache-repo or --cache-dir"},
		{[]string{"--no-push", "--cache", "--cache-dir-layers=false"}, "--cache with --no-push needs --cache-repo or --cache-dir"},
		{[]string{"--no-push", "--cache-dir-max-size", "10XB"}, "--cache-dir-max-size"},
		{nil, "no --destination given"},
	} {
		if _, err := ParseFlags(tc.args); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want it to contain %q", tc.args, err, tc.want)
		}
	}
}
