package executor

import "testing"

// A directory-mode build must not touch the host's /cache unless --cache-dir names it.
func TestDirectoryModeCacheDir(t *testing.T) {
	for _, tc := range []struct {
		args []string
		pod  bool
		want string
	}{
		{[]string{"--no-push"}, false, ""},
		{[]string{"--no-push"}, true, DefaultCacheDir},
		{[]string{"--no-push", "--cache-dir", "/cache"}, false, "/cache"},
		{[]string{"--no-push", "--cache-dir", "/var/tmp/c"}, false, "/var/tmp/c"},
		{[]string{"--no-push", "--cache-dir="}, false, ""},
	} {
		c, err := ParseFlags(tc.args)
		if err != nil {
			t.Fatal(err)
		}
		got := directoryModeCacheDir(c, &runOptions{podMode: tc.pod})
		if got.CacheDir != tc.want {
			t.Errorf("%q (pod %v): cache dir %q, want %q", tc.args, tc.pod, got.CacheDir, tc.want)
		}
		if c.CacheDir != DefaultCacheDir && len(tc.args) == 1 {
			t.Errorf("%q: the caller's Config was changed", tc.args)
		}
	}
}
