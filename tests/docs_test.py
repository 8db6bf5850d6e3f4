#!/usr/bin/python3
"""Checks that the program output quoted in the backprop walkthroughs is what chainrule prints.

Usage: docs_test.py CHAINRULE_BINARY SOURCE_DIR

Pages checked: docs/backprop.md, docs/zh/backprop.md and README.md.

The marker. A fenced code block quotes program output when the last non-blank line before its
opening fence is an HTML comment naming the command that printed it:

    <!-- output: chainrule explain --lang zh -->
    ```
    前向传播
      z_h1 = w1·x1 + w2·x2 + b1 = 1·(-2) + 1·5 + 0 = 3
    ```

The command is split like a shell would (shlex, no shell is run); its first word must be
`chainrule`, which is replaced by CHAINRULE_BINARY, and it runs in SOURCE_DIR (so relative paths
such as examples/people.csv work). It must exit with status 0. Blocks without a marker (formulas,
shell commands, Python) are ignored. Markdown renders the comment as nothing.

The comparison. Every non-blank line of the block, trailing whitespace stripped, must equal a
line of the command's output, in order: a block may be an excerpt, so output lines may be
skipped, but block lines may not be reordered. An excerpt may be re-indented as a whole: all of
a block's lines may be shifted left or right by the same number of spaces (their relative
indentation must be kept).

Wall-clock times. Before comparing, every duration (a number followed by ns, us, µs, ms, s or
min, such as `0.37 ms`) is replaced by `<time>`, both in the output and in the block. So a
quoted `chainrule demo` line may carry the time of the run it was copied from, or the placeholder
itself: `(4000 SGD steps, trained in <time>)`.

The test prints each block it checks and exits 1 on any mismatch, on a marker that is not
followed by a code block, on a command that fails, or when a page has no marked block at all
(markers lost in an edit).
"""
import re
import shlex
import subprocess
import sys
import time

PAGES = ["docs/backprop.md", "docs/zh/backprop.md", "README.md"]

MARKER = re.compile(r"^\s*<!--\s*output:\s*(.*?)\s*-->\s*$")
LOOSE_MARKER = re.compile(r"<!--\s*output\b")
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})(.*)$")
DURATION = re.compile(r"(?<![\w.])\d+(?:\.\d+)?\s?(?:ns|us|µs|ms|s|min)\b")


def normalise(line):
    return DURATION.sub("<time>", line.rstrip())


def parse_blocks(path):
    """Yields (marker command or None, line number of the opening fence, content lines)."""
    lines = open(path, encoding="utf-8").read().split("\n")
    i = 0
    pending = None  # (command, line number) of a marker not yet attached to a block
    while i < len(lines):
        line = lines[i]
        m = FENCE.match(line)
        # An opening fence: a backtick fence's info string may not contain a backtick.
        if m and (m.group(2)[0] == "~" or "`" not in m.group(3)):
            indent, fence = len(m.group(1)), m.group(2)
            start = i + 1
            content = []
            i += 1
            while i < len(lines):
                close = re.match(r"^\s*(" + re.escape(fence[0]) + r"{" + str(len(fence)) + r",})\s*$",
                                 lines[i])
                if close:
                    break
                # Content of an indented fence (in a list item) loses up to the fence's indent.
                body = lines[i]
                strip = min(indent, len(body) - len(body.lstrip(" ")))
                content.append(body[strip:])
                i += 1
            else:
                raise SystemExit(f"FAIL {path}:{start}: code block never closed")
            yield (pending[0] if pending else None, start, content)
            pending = None
            i += 1
            continue
        m = MARKER.match(line)
        if m:
            if pending:
                raise SystemExit(f"FAIL {path}:{pending[1]}: output marker not followed by a code block")
            pending = (m.group(1), i + 1)
        elif LOOSE_MARKER.search(line):
            raise SystemExit(f"FAIL {path}:{i + 1}: malformed output marker: {line.strip()}")
        elif line.strip() and pending:
            raise SystemExit(f"FAIL {path}:{pending[1]}: output marker not followed by a code block")
        i += 1
    if pending:
        raise SystemExit(f"FAIL {path}:{pending[1]}: output marker not followed by a code block")


def shifted(line, shift):
    if shift >= 0:
        return " " * shift + line
    if line[:-shift].strip():
        return None  # cannot move this line that far left
    return line[-shift:]


def match(block, output):
    """Returns None when block is an in-order excerpt of output, otherwise an error message."""
    # A line of only "..." marks where lines were left out (README.md): no line to match.
    want = [normalise(l) for l in block if l.strip() and l.strip() not in ("...", "…")]
    have = [normalise(l) for l in output]
    if not want:
        return "the block is empty"
    indent = lambda s: len(s) - len(s.lstrip(" "))
    shifts = sorted({indent(h) - indent(want[0]) for h in have if h.strip() == want[0].strip()})
    best = (-1, None)  # (lines matched, first line that did not match)
    for shift in shifts:
        pos, matched = 0, 0
        for line in want:
            target = shifted(line, shift)
            while pos < len(have) and have[pos] != target:
                pos += 1
            if pos == len(have):
                break
            pos += 1
            matched += 1
        if matched == len(want):
            return None
        if matched > best[0]:
            best = (matched, want[matched])
    if best[1] is None:
        return f"its first line is not a line of the output:\n    {want[0]}"
    return (f"{best[0]} line(s) matched, then this line is not in the output "
            f"(at least not after them):\n    {best[1]}")


def main(binary, source):
    began = time.monotonic()
    outputs = {}
    failures = 0
    for page in PAGES:
        path = f"{source}/{page}"
        checked = 0
        for command, line, content in parse_blocks(path):
            if command is None:
                continue
            checked += 1
            words = shlex.split(command)
            where = f"{page}:{line}"
            print(f"{where}: {command}  ({sum(1 for l in content if l.strip())} lines)")
            if not words or words[0] != "chainrule":
                print(f"FAIL {where}: the command must start with chainrule")
                failures += 1
                continue
            if command not in outputs:
                run = subprocess.run([binary] + words[1:], cwd=source, capture_output=True,
                                     timeout=20)
                outputs[command] = (run.returncode, run.stdout.decode("utf-8"),
                                    run.stderr.decode("utf-8", "replace"))
            rc, out, err = outputs[command]
            if rc != 0:
                print(f"FAIL {where}: `{command}` exited with {rc}:\n{err}")
                failures += 1
                continue
            problem = match(content, out.split("\n"))
            if problem:
                print(f"FAIL {where}: the block does not match `{command}`: {problem}")
                failures += 1
        if checked == 0:
            print(f"FAIL {page}: no code block carries an output marker")
            failures += 1
    print(f"{'FAILED' if failures else 'passed'}: {failures} failure(s), "
          f"{len(outputs)} command(s) run, {time.monotonic() - began:.2f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
