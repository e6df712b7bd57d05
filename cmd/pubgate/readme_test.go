package main

// TestReadmeCommands runs the shell commands that README.md shows, against
// the quickstart, so the README cannot drift from the product. The convention:
//
//   - Only a ```sh block whose previous line is a marker runs:
//     <!-- test: run -->        each command runs, one after the other;
//     <!-- test: background --> each command is started and left running (a
//     redis-cli SUBSCRIBE/PSUBSCRIBE "in another terminal"); the test waits
//     for its subscription confirmation and stops it at the end;
//     <!-- test: stopped -->    runs after the test has stopped pubgate.
//     Blocks run in README order against one quickstart, started by the test
//     from examples/quickstart/pubgate.yaml (as the Quickstart's first block).
//   - A command is a line, with its `\` continuations and the lines of a quoted
//     string it opens. An assignment alone (`CA=…`) carries over to every
//     later command, as in one terminal session.
//   - A command's shown output is the `# …` lines right after it, or a
//     trailing comment starting with `(` (redis-cli's `(integer) 1`,
//     `(error) …`); other comments are remarks. Output (stdout and stderr) is
//     compared line by line; `…` in a shown line matches any text, a line of
//     just `…` any number of lines. With shown output the exit status is not
//     checked (a refusal may exit non-zero); without, it must be 0.
//   - Commands run with bash in the repository root, HOME in a temporary
//     directory (so `~/.local/share/pubgate` is the quickstart's CA and audit
//     key), `pubgate` being this test binary, and `redis-cli` given --no-raw
//     (the replies a terminal shows). The only rewrites of command text:
//     port 6380 (`-p 6380`, `127.0.0.1:6380`) becomes the quickstart's free
//     port and /tmp/pubgate-quickstart a temporary directory.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pubgate/pubgate/internal/testutil"
)

type readmeBlock struct {
	mode  string // run, background or stopped
	line  int    // of the marker, for messages
	steps []readmeStep
}

type readmeStep struct {
	command string
	want    []string // shown output; nil: none shown
	line    int
}

var readmeMarker = regexp.MustCompile(`^<!-- test: (\w+) -->$`)

// readmeBlocks extracts the marked blocks of a Markdown file.
func readmeBlocks(t *testing.T, path string) []readmeBlock {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	var blocks []readmeBlock
	for i := 0; i < len(lines); i++ {
		m := readmeMarker.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		if m[1] != "run" && m[1] != "background" && m[1] != "stopped" {
			t.Fatalf("%s:%d: unknown test marker %q", path, i+1, m[1])
		}
		if i+1 >= len(lines) || lines[i+1] != "```sh" {
			t.Fatalf("%s:%d: a test marker must be followed by a ```sh block", path, i+1)
		}
		b := readmeBlock{mode: m[1], line: i + 1}
		j := i + 2
		for ; j < len(lines) && lines[j] != "```"; j++ {
		}
		b.steps = readmeSteps(t, fmt.Sprintf("%s:%d", path, i+3), lines[i+2:j], i+3)
		blocks = append(blocks, b)
		i = j
	}
	return blocks
}

func readmeSteps(t *testing.T, where string, lines []string, first int) []readmeStep {
	t.Helper()
	var steps []readmeStep
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if strings.TrimSpace(line) == "" {
			continue
		}
		if strings.HasPrefix(line, "#") {
			if len(steps) > 0 {
				s := &steps[len(steps)-1]
				s.want = append(s.want, strings.TrimPrefix(strings.TrimPrefix(line, "#"), " "))
			}
			continue
		}
		step := readmeStep{line: first + i}
		text := line
		for (strings.HasSuffix(text, `\`) || openQuote(text)) && i+1 < len(lines) {
			i++
			text += "\n" + lines[i]
		}
		if openQuote(text) {
			t.Fatalf("%s: unterminated quote in %q", where, text)
		}
		command, comment := splitComment(text)
		step.command = strings.TrimSpace(command)
		if strings.HasPrefix(comment, "(") {
			step.want = []string{comment}
		}
		steps = append(steps, step)
	}
	return steps
}

// openQuote reports whether s ends inside a quoted string (shell quoting, no
// escapes inside single quotes).
func openQuote(s string) bool {
	var q rune
	escaped := false
	for _, r := range s {
		switch {
		case escaped:
			escaped = false
		case q == 0 && r == '\\':
			escaped = true
		case q == 0 && (r == '\'' || r == '"'):
			q = r
		case q != 0 && r == q:
			q = 0
		}
	}
	return q != 0
}

// splitComment splits a command from its trailing comment: a # after
// whitespace, outside quotes.
func splitComment(s string) (command, comment string) {
	var q rune
	prev := ' '
	for i, r := range s {
		switch {
		case q == 0 && (r == '\'' || r == '"'):
			q = r
		case q != 0 && r == q:
			q = 0
		case q == 0 && r == '#' && (prev == ' ' || prev == '\t'):
			return s[:i], strings.TrimSpace(s[i+1:])
		}
		prev = r
	}
	return s, ""
}

// outputMatches compares output lines with shown ones, where … matches any
// text and a line of just … any number of lines.
func outputMatches(got, want []string) bool {
	if len(want) == 0 {
		return len(got) == 0
	}
	if strings.TrimSpace(want[0]) == "…" {
		for i := 0; i <= len(got); i++ {
			if outputMatches(got[i:], want[1:]) {
				return true
			}
		}
		return false
	}
	if len(got) == 0 {
		return false
	}
	parts := strings.Split(want[0], "…")
	for i := range parts {
		parts[i] = regexp.QuoteMeta(parts[i])
	}
	if !regexp.MustCompile(`^` + strings.Join(parts, ".*") + `$`).MatchString(got[0]) {
		return false
	}
	return outputMatches(got[1:], want[1:])
}

func outputLines(out string) []string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines = append(lines, strings.TrimRight(sc.Text(), " \t"))
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

func TestReadmeCommands(t *testing.T) {
	testutil.RequireBinary(t, "bash")
	redisCLI := testutil.RequireBinary(t, "redis-cli")
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	blocks := readmeBlocks(t, filepath.Join(root, "README.md"))
	if len(blocks) == 0 {
		t.Fatal("README.md has no marked blocks")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}

	// pubgate is this binary (TestMain); redis-cli answers as on a terminal.
	bin := t.TempDir()
	for name, script := range map[string]string{
		"pubgate":   fmt.Sprintf("#!/bin/sh\n%s=1 exec %q \"$@\"\n", asMainEnv, self),
		"redis-cli": fmt.Sprintf("#!/bin/sh\nexec %q --no-raw \"$@\"\n", redisCLI),
	} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	home, auditDir := t.TempDir(), t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))

	// The quickstart, on a free port, its audit log in auditDir.
	data, err := os.ReadFile(filepath.Join(root, "examples", "quickstart", "pubgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	config := string(data)
	for _, r := range [][2]string{
		{"address: 127.0.0.1:6380", "address: 127.0.0.1:0"},
		{"paths: [../policies]", "paths: [" + filepath.Join(root, "examples", "policies") + "]"},
		{"path: /tmp/pubgate-quickstart/", "path: " + auditDir + "/"},
	} {
		if !strings.Contains(config, r[0]) {
			t.Fatalf("examples/quickstart/pubgate.yaml no longer has %q", r[0])
		}
		config = strings.ReplaceAll(config, r[0], r[1])
	}
	g := startGatewayWith(t, config, localGateway(filepath.Join(home, ".local", "share", "pubgate")))
	port := strconv.Itoa(g.port)
	rewrite := strings.NewReplacer(
		"-p 6380 ", "-p "+port+" ",
		"127.0.0.1:6380", "127.0.0.1:"+port,
		"/tmp/pubgate-quickstart", auditDir,
	)

	var prelude []string // assignments so far
	var background []func()
	stopBackground := func() {
		for _, stop := range background {
			stop()
		}
		background = nil
	}
	t.Cleanup(stopBackground)
	assignment := regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=\S*$`)
	confirmed := regexp.MustCompile(`(?m)^3\) \(integer\) \d+$`)
	stopped := false
	for _, b := range blocks {
		if b.mode == "stopped" && !stopped {
			stopBackground()
			if code := g.stop(); code != 0 {
				t.Fatalf("pubgate exited %d", code)
			}
			stopped = true
		} else if b.mode != "stopped" && stopped {
			t.Fatalf("README.md:%d: a %q block after a stopped one", b.line, b.mode)
		}
		for _, s := range b.steps {
			command := rewrite.Replace(s.command)
			if assignment.MatchString(command) {
				prelude = append(prelude, command)
				continue
			}
			if b.mode == "background" {
				command = "exec " + command // so that stopping it stops redis-cli
			}
			script := strings.Join(append(append([]string{}, prelude...), command), "\n")
			if b.mode != "background" {
				out, err := runBounded(root, script)
				if s.want == nil {
					if err != nil {
						t.Errorf("README.md:%d: %s\n%v:\n%s", s.line, command, err, out)
					}
				} else if got := outputLines(string(out)); !outputMatches(got, s.want) {
					t.Errorf("README.md:%d: %s\nprinted:\n%s\nREADME shows:\n%s", s.line, command,
						strings.Join(got, "\n"), strings.Join(s.want, "\n"))
				}
				continue
			}
			cmd := exec.Command("bash", "-c", script)
			cmd.Dir = root
			out := &syncBuffer{}
			cmd.Stdout, cmd.Stderr = out, out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan struct{})
			go func() { cmd.Wait(); close(exited) }()
			background = append(background, func() { cmd.Process.Kill(); <-exited })
			testutil.Eventually(t, fmt.Sprintf("README.md:%d subscribed", s.line), func() bool {
				select {
				case <-exited:
					t.Fatalf("README.md:%d: %s\nexited early:\n%s", s.line, command, out)
				default:
				}
				return confirmed.MatchString(out.String())
			})
		}
	}
}

// runBounded runs a one-shot README command. The bound is for liveness
// only (a command waiting for input that never comes), never for speed.
func runBounded(dir, script string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = dir
	return cmd.CombinedOutput()
}
