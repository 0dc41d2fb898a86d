// dockerfile-check parses, lints and converts Dockerfiles to a BuildKit build graph (LLB)
// with BuildKit's own Dockerfile frontend, without a Docker engine or registry access.
//
//	dockerfile-check [-context DIR] [-build-arg K=V]... Dockerfile...
//
// For each file it runs the frontend's linter with every rule, experimental ones too (any
// warning fails), then converts every stage to LLB, which catches what `docker build` would
// reject before running a step: syntax, unknown instructions or flags, undefined stages and
// build args, bad COPY --from. Base images are not pulled: their config is stubbed with a
// Debian-like PATH, so checks that need the real image (its ENV, USER) see that stub. It
// also checks that every local COPY/ADD source exists in the build context and is not
// excluded by .dockerignore.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerui"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

type stubResolver struct{}

func (stubResolver) ResolveImageConfig(_ context.Context, ref string, _ sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	// BuildKit hands over normalized references (no tag -> ":latest"). An image on
	// ":latest" is either unpinned or a misspelt stage name (COPY --from=<typo> silently
	// becomes an image pull): reject both.
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", "", nil, err
	}
	_, digested := named.(reference.Digested)
	if tagged, ok := named.(reference.Tagged); !digested && (!ok || tagged.Tag() == "latest") {
		return "", "", nil, fmt.Errorf("image %q is not pinned to a tag other than latest (a misspelt stage name?)", ref)
	}
	img := ocispecs.Image{
		Platform: ocispecs.Platform{OS: "linux", Architecture: "amd64"},
		Config: ocispecs.ImageConfig{
			Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"},
		},
		RootFS: ocispecs.RootFS{Type: "layers"},
	}
	dt, err := json.Marshal(img)
	if err != nil {
		return "", "", nil, err
	}
	return ref, digest.FromBytes(dt), dt, nil
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	contextDir := flag.String("context", ".", "build context directory (for COPY/ADD sources)")
	var buildArgs multiFlag
	flag.Var(&buildArgs, "build-arg", "KEY=VALUE (repeatable)")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: dockerfile-check [-context DIR] [-build-arg K=V]... Dockerfile...")
		os.Exit(2)
	}
	args := map[string]string{}
	for _, kv := range buildArgs {
		k, v, _ := strings.Cut(kv, "=")
		args[k] = v
	}
	ignore, err := loadDockerignore(*contextDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	failed := false
	for _, path := range flag.Args() {
		problems := check(path, *contextDir, args, ignore)
		for _, p := range problems {
			fmt.Printf("ERROR %s: %s\n", path, p)
		}
		if len(problems) > 0 {
			failed = true
		} else {
			fmt.Printf("ok   %s\n", path)
		}
	}
	if failed {
		os.Exit(1)
	}
}

func loadDockerignore(dir string) (*patternmatcher.PatternMatcher, error) {
	f, err := os.Open(filepath.Join(dir, ".dockerignore"))
	if os.IsNotExist(err) {
		return patternmatcher.New(nil)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, err
	}
	return patternmatcher.New(patterns)
}

func check(path, contextDir string, args map[string]string, ignore *patternmatcher.PatternMatcher) []string {
	var problems []string
	dt, err := os.ReadFile(path)
	if err != nil {
		return []string{err.Error()}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src := llb.Local("dockerfile")
	def, err := src.Marshal(ctx)
	if err != nil {
		return []string{err.Error()}
	}
	opt := func() dockerfile2llb.ConvertOpt {
		smap := llb.NewSourceMap(&src, path, "Dockerfile", dt)
		smap.Definition = def
		return dockerfile2llb.ConvertOpt{
			Config: dockerui.Config{
				BuildArgs:    args,
				LinterConfig: &linter.Config{ExperimentalAll: true},
			},
			SourceMap:    smap,
			MetaResolver: stubResolver{},
		}
	}

	lint, err := dockerfile2llb.DockerfileLint(ctx, dt, opt())
	if err != nil {
		return []string{"lint: " + err.Error()}
	}
	for _, w := range lint.Warnings {
		line := 0
		if w.Location != nil && len(w.Location.Ranges) > 0 {
			line = int(w.Location.Ranges[0].Start.Line)
		}
		problems = append(problems, fmt.Sprintf("line %d: %s: %s", line, w.RuleName, w.Detail))
	}
	if lint.Error != nil {
		problems = append(problems, "lint: "+lint.Error.Message)
	}

	if _, err := dockerfile2llb.Dockerfile2LLB(ctx, dt, opt()); err != nil {
		problems = append(problems, "convert: "+err.Error())
	}

	problems = append(problems, checkSources(dt, contextDir, args, ignore)...)
	return problems
}

// checkSources verifies that local COPY/ADD sources exist in the context and survive
// .dockerignore. Build args are expanded with the stage's ARG defaults and -build-arg.
func checkSources(dt []byte, contextDir string, args map[string]string, ignore *patternmatcher.PatternMatcher) []string {
	var problems []string
	res, err := parser.Parse(strings.NewReader(string(dt)))
	if err != nil {
		return []string{"parse: " + err.Error()}
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return []string{"parse: " + err.Error()}
	}
	global := map[string]string{}
	for _, ma := range metaArgs {
		for _, kv := range ma.Args {
			if kv.Value != nil {
				global[kv.Key] = *kv.Value
			}
		}
	}
	for _, stage := range stages {
		vars := map[string]string{}
		for k, v := range global {
			vars[k] = v
		}
		for _, cmd := range stage.Commands {
			switch c := cmd.(type) {
			case *instructions.ArgCommand:
				for _, kv := range c.Args {
					if v, ok := args[kv.Key]; ok {
						vars[kv.Key] = v
					} else if kv.Value != nil {
						vars[kv.Key] = *kv.Value
					}
				}
			case *instructions.CopyCommand:
				if c.From != "" {
					continue
				}
				problems = append(problems, missingSources(c.SourcePaths, vars, contextDir, ignore)...)
			case *instructions.AddCommand:
				problems = append(problems, missingSources(c.SourcePaths, vars, contextDir, ignore)...)
			}
		}
	}
	return problems
}

func missingSources(sources []string, vars map[string]string, contextDir string, ignore *patternmatcher.PatternMatcher) []string {
	var problems []string
	for _, src := range sources {
		if strings.Contains(src, "://") {
			continue
		}
		expanded := os.Expand(src, func(k string) string { return vars[k] })
		rel := filepath.Clean(strings.TrimPrefix(expanded, "/"))
		matches, _ := filepath.Glob(filepath.Join(contextDir, rel))
		if len(matches) == 0 {
			problems = append(problems, fmt.Sprintf("COPY/ADD source %q (%s) not in the build context", src, rel))
			continue
		}
		for _, m := range matches {
			r, _ := filepath.Rel(contextDir, m)
			if excluded, _ := ignore.MatchesOrParentMatches(filepath.ToSlash(r)); excluded {
				problems = append(problems, fmt.Sprintf("COPY/ADD source %q (%s) is excluded by .dockerignore", src, r))
			}
		}
	}
	return problems
}
