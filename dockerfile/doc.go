// Package dockerfile parses Dockerfiles with BuildKit's parser, expands ARG and
// ENV references with BuildKit's shell lexer, and answers the questions a
// builder asks: which stages a target needs, what a stage's base is, what an
// instruction looks like after expansion, what argv a RUN executes, and which
// context files .dockerignore excludes.
//
// Instructions keep BuildKit's instructions.*Command types so that a builder
// can type-switch on them. Nothing here holds package-level mutable state:
// several builds may parse and expand in one process at once.
package dockerfile
