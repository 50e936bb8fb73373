package builder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/kilnbuild/kiln/dockerfile"
	"github.com/kilnbuild/kiln/internal/dirspread"
	"github.com/kilnbuild/kiln/snapshot"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Build runs the Dockerfile in src against the root chosen by the options and returns the image
// of the target stage (the last stage by default). The image's new layers are files in the work
// directory (see WithWorkDir): push or write the image before removing that directory or
// starting another build with the same one.
func Build(ctx context.Context, src dockerfile.Source, opts ...Option) (v1.Image, error) {
	o := defaults()
	for _, opt := range opts {
		opt(&o)
	}
	b, err := newBuild(o)
	if err != nil {
		return nil, err
	}
	return b.run(ctx, src)
}

// build is the state of one Build call; nothing of it outlives the call.
type build struct {
	o            options
	root         string
	workDir      string
	ignore       *ignoreList
	platform     ocispec.Platform
	df           *dockerfile.Dockerfile
	meta         *dockerfile.Vars
	dockerignore *dockerfile.Ignore
	snap         *snapshot.Snapshotter
	results      map[int]*stageResult
	// scopes holds the variables each finished stage ended with (stages built on it inherit its ARGs).
	scopes map[int]*dockerfile.Scope
	// rootHolds is the stage whose filesystem the root holds now (-1: none, or unknown).
	rootHolds int
	// saved maps a stage to a directory holding its filesystem (moved aside or extracted).
	saved map[int]string
	// images maps a COPY --from image reference to the directory it was extracted to.
	images   map[string]string
	usedArgs map[string]bool
	// cacheWrites stores cache entries in the background (nil without a cache).
	cacheWrites *cacheWriter
	// mountCache is where RUN --mount=type=cache directories live (set on first use).
	mountCache *cacheDirs
	// commits are the commits of this build's Git sources; gitDirs their checkouts (addgit.go).
	commits *gitCommits
	gitDirs []string
	// contexts are the named contexts (--build-context) by normalised name (namedcontext.go).
	contexts map[string]*namedContext
	// emulation says whether pod-mode RUN mounts are emulated (see emulatemounts.go).
	emulation *mountEmulation
	// chrootOnly runs RUN in this root by chroot alone: a side root of a pod that may not
	// create namespaces (see schedule.go).
	chrootOnly bool
	// outMu serialises the RUN output lines of stages running at once (see prefixWriter).
	outMu *sync.Mutex
}

// stageResult is what a finished stage leaves for later stages.
type stageResult struct {
	image v1.Image
}

func newBuild(o options) (*build, error) {
	if o.root == "" {
		return nil, errors.New("builder: no root: use WithDirectoryRoot(dir) or WithPodRoot(kanikoDir)")
	}
	b := &build{o: o, rootHolds: -1, results: map[int]*stageResult{}, scopes: map[int]*dockerfile.Scope{}, saved: map[int]string{},
		images: map[string]string{}, usedArgs: map[string]bool{},
		commits: &gitCommits{}, emulation: &mountEmulation{}, outMu: &sync.Mutex{}}
	if o.platform != nil {
		b.platform = *o.platform
	} else {
		b.platform = dockerfile.DefaultPlatform()
	}
	if o.podMode {
		b.root = "/"
		paths, err := podIgnorePaths(o.kanikoDir, o.ignorePaths, o.ignoreVarRun)
		if err != nil {
			return nil, err
		}
		b.ignore = newIgnoreList(paths)
		b.workDir = o.workDir
		if b.workDir == "" {
			b.workDir = o.kanikoDir
		}
		if !b.ignore.Ignored(b.workDir) {
			return nil, fmt.Errorf("builder: work dir %s must be inside the ignored paths in pod mode (e.g. under %s)", b.workDir, o.kanikoDir)
		}
	} else {
		root, err := filepath.Abs(o.root)
		if err != nil {
			return nil, err
		}
		if root == "/" {
			return nil, errors.New("builder: WithDirectoryRoot(\"/\") would build into the host's root; use WithPodRoot inside a container")
		}
		b.root = root
		b.ignore = newIgnoreList(o.ignorePaths)
		b.workDir = o.workDir
		if b.workDir != "" {
			wd, err := filepath.Abs(b.workDir)
			if err != nil {
				return nil, err
			}
			if rel, err := filepath.Rel(root, wd); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
				return nil, fmt.Errorf("builder: work dir %s is inside the root %s; its files would end up in the image", wd, root)
			}
			b.workDir = wd
		}
	}
	return b, nil
}

func (b *build) run(ctx context.Context, src dockerfile.Source) (img v1.Image, err error) {
	start := time.Now()
	if b.o.podMode && runtime.GOOS != "linux" {
		return nil, errors.New("builder: pod mode needs Linux")
	}
	if err := b.prepareDirs(); err != nil {
		return nil, err
	}
	// The image's trees go where the file system has room, not into the groups a deleted tree
	// (the previous pod's, the previous stage's) just freed: see dirspread. Side roots and
	// unpacked --from images get the same (freshDir).
	defer dirspread.Children(b.root)()
	if b.cacheOn() {
		b.cacheWrites = newCacheWriter(ctx, b.warn)
		defer b.cacheWrites.wait(b.o.cache.writeTimeout)
	} else if b.o.cache != nil {
		b.warn("--single-snapshot builds do not use the layer cache")
	}
	df, err := dockerfile.Parse(src)
	if err != nil {
		return nil, err
	}
	b.df = df
	b.noteDirectives()
	b.meta, err = df.Meta(b.o.buildArgs, b.platform, dockerfile.DefaultPlatform())
	if err != nil {
		return nil, err
	}
	for _, k := range b.meta.Keys() {
		b.usedArgs[k] = true
	}
	if err := b.initContexts(); err != nil {
		return nil, err
	}
	plan, err := b.plan()
	if err != nil {
		return nil, err
	}
	b.dockerignore, err = dockerfile.LoadIgnore(b.o.contextDir, src.Name)
	if err != nil {
		return nil, err
	}
	b.snap = b.newSnapshotter(b.root)
	img, err = b.runStages(ctx, plan)
	if err != nil {
		return nil, err
	}
	if unused := b.o.buildArgs.Unused(b.usedArgs); len(unused) > 0 {
		b.warn("one or more build args were not consumed: %v", unused)
	}
	if b.o.cleanup {
		if err := snapshot.Clear(b.root, b.ignore.Ignored); err != nil {
			return nil, fmt.Errorf("cleanup: %w", err)
		}
	}
	b.o.reporter.Report(Event{Kind: EventBuildDone, Time: time.Now(), Duration: time.Since(start)})
	return img, nil
}

// plan lists the stages to build, in order.
func (b *build) plan() ([]int, error) {
	needed, err := b.df.StagesReplacing(b.o.target, b.meta, b.replacesStage)
	if err != nil {
		return nil, err
	}
	if b.o.skipUnusedStages || len(needed) == 0 {
		return needed, nil
	}
	// Kaniko without --skip-unused-stages builds every stage up to the target.
	lastIdx := needed[len(needed)-1]
	all := make([]int, 0, lastIdx+1)
	for i := 0; i <= lastIdx; i++ {
		all = append(all, i)
	}
	return all, nil
}

func (b *build) prepareDirs() error {
	if b.workDir == "" {
		b.workDir = b.root + ".kiln-work"
	}
	if !b.o.podMode {
		// What an earlier build left here is stale: this build's image is made of what it
		// writes now. (In pod mode the work dir is the executor's own, fresh in every pod.)
		for _, d := range []string{"layers", "stages", "images", "tmp", "roots"} {
			if err := os.RemoveAll(filepath.Join(b.workDir, d)); err != nil {
				return fmt.Errorf("builder: clearing work dir %s: %w", b.workDir, err)
			}
		}
	}
	if !b.o.podMode {
		if err := os.MkdirAll(b.root, 0o755); err != nil {
			return fmt.Errorf("builder: creating root %s: %w", b.root, err)
		}
	}
	for _, d := range []string{"layers", "stages", "images", "tmp"} {
		if err := os.MkdirAll(filepath.Join(b.workDir, d), 0o755); err != nil {
			return fmt.Errorf("builder: creating work dir: %w", err)
		}
	}
	return nil
}

// noteDirectives logs the parser directives Kiln accepts without acting on them.
func (b *build) noteDirectives() {
	for _, d := range b.df.Directives {
		switch d.Name {
		case "syntax":
			b.note(d.Line, "syntax directive %s noted; Kiln's own parser is used", d.Value)
		case "check":
			b.note(d.Line, "check directive %s noted; Kiln runs no build checks", d.Value)
		}
	}
}

// note reports a fact at info level (EventNote).
func (b *build) note(line int, format string, args ...any) {
	b.o.reporter.Report(Event{Kind: EventNote, Time: time.Now(), Line: line, Message: fmt.Sprintf(format, args...)})
}

func (b *build) warn(format string, args ...any) {
	b.o.reporter.Report(Event{Kind: EventWarning, Time: time.Now(), Message: fmt.Sprintf(format, args...)})
}

// layerCompression fills in the defaults: gzip at BestSpeed, which is what Kaniko writes (its
// layers go through go-containerregistry's tarball package, whose default level that is) and
// what keeps compressing an incompressible 70 MB binary cheap.
func layerCompression(c snapshot.Compression) snapshot.Compression {
	if c.Algorithm == "" {
		c.Algorithm = "gzip"
	}
	if c.Level <= 0 && c.Algorithm == "gzip" {
		c.Level = 1
	}
	return c
}
