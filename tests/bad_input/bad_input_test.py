#!/usr/bin/env python3
"""Every file of the hostile corpus (tests/data/bad/, written by make_corpus.py) and two large
cases generated here (a 100 MB single line, a million columns) must give exit code 2 and exactly
one line on stderr, "chainrule: error: " + the file's name (with line and column where known) +
what was expected; never a crash, a hang (each run has 60 s) or a peak RSS out of proportion to
the file (the two large cases: at most 100 MiB + 16 × its size). Every corpus file must be listed below.

Usage: bad_input_test.py CHAINRULE CORPUS_DIR WORKDIR
"""
import os
import re
import shutil
import subprocess
import sys
import time

chainrule, corpus, work = sys.argv[1:4]
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)

TRAIN = ["train", "{f}", "--quiet", "--epochs", "2", "--out", "{work}/out.safetensors"]
IDX = lambda labels: TRAIN + ["--labels", f"{corpus}/{labels}"]
INFO = ["info", "{f}"]
RESUME = ["train", "--resume", "{f}", "--quiet"]
PREDICT = ["predict", "{f}", f"{corpus}/../../../examples/people.csv"]

# file: (command, pattern the message must match after "chainrule: error: <file>")
CASES = {
    "empty.csv": (TRAIN, r":1: the file is empty: expected a header line"),
    "bom_only.csv": (TRAIN, r":1: the file is empty"),
    "header_only.csv": (TRAIN, r":1: no data rows after the header"),
    "blank_lines_only.csv": (TRAIN, r":1: the file is empty"),
    "ragged.csv": (TRAIN, r":3:3: expected 3 fields \(as in the header\), found 2"),
    "too_many_fields.csv": (TRAIN, r":3:5: expected 3 fields \(as in the header\), found 4"),
    "truncated.csv": (TRAIN, r":5:3: expected 3 fields \(as in the header\), found 2"),
    "binary_junk.csv": (TRAIN, r":\d+:\d+: a NUL byte: expected text"),
    "nul_bytes.csv": (TRAIN, r":2:3: a NUL byte: expected text"),
    "invalid_utf8.csv": (TRAIN, r":3:3: the text in column 'y' is not valid UTF-8"),
    "invalid_utf8_header.csv": (TRAIN, r":1:3: the column name is not valid UTF-8"),
    "overlong_utf8.csv": (TRAIN, r":2:3: the text in column 'y' is not valid UTF-8"),
    "unterminated_quote.csv": (TRAIN, r":2:5: unterminated quoted field: expected a closing '\"'"),
    "quote_in_field.csv": (TRAIN, r":2:6: a '\"' inside an unquoted field"),
    "junk_after_quote.csv": (TRAIN, r":2:8: expected a delimiter or the end of the line after a "
                                    r"closing quote, found 'y'"),
    "nan_literal.csv": (TRAIN, r":2:2: missing value in column 'b': expected a number"),
    "inf_literal.csv": (TRAIN, r":2:2: the number 'inf' in column 'b' is out of range: expected "
                               r"a finite number"),
    "negative_infinity.csv": (TRAIN, r":2:2: the number '-Infinity' in column 'b' is out of range"),
    "out_of_double_range.csv": (TRAIN, r":2:2: the number '1e999' in column 'b' is out of range"),
    "out_of_float_range.csv": (TRAIN + ["--scale", "none"],
                               r":2:2: the number 3.5e\+38 in column 'b' is out of range of "
                               r"float32 after scaling"),
    "hex_number.csv": (TRAIN, r":2:2: expected a number in column 'b' \(a numeric column\), "
                              r"found '0x1p3'"),
    "duplicate_columns.csv": (TRAIN, r":1:5: duplicate column name 'a' \(also column 1\)"),
    "one_class.csv": (TRAIN, r": the target column 'y' has only one class \('x'\): expected at "
                             r"least two"),
    "all_missing_target.csv": (TRAIN, r": the target column 'y' has no values \(every row's is "
                                      r"missing\)"),
    "constant_regression_target.csv": (TRAIN, r": the target column 'y' has only one class"),
    "text_in_numeric.csv": (TRAIN, r":3:2: expected a number in column 'b'"),
    "missing_value.csv": (TRAIN, r":2:2: missing value in column 'b'"),
    "only_target.csv": (TRAIN, r": no feature columns left besides the target 'y'"),
    "crlf_ragged.csv": (TRAIN, r":3:3: expected 3 fields"),
    "lone_cr.csv": (TRAIN, r":1:6: a carriage return without a line feed: expected LF or CRLF"),
    "truncated.csv.gz": (TRAIN, r": the compressed file is damaged or cut short"),
    "corrupt.csv.gz": (TRAIN, r": cannot read the file: .*invalid"),
    "images_short-ubyte": (IDX("labels_count-ubyte"),
                           r": the header promises 784000 bytes of data, the file holds 3"),
    "images_long-ubyte": (IDX("labels_count-ubyte"),
                          r": the header promises 8 bytes of data, the file holds 9"),
    "images_overflow-ubyte": (IDX("labels_count-ubyte"),
                              r": the header's dimensions multiply to more bytes than any file"),
    "images_zero_count-ubyte": (IDX("labels_count-ubyte"), r": the header promises 0 images"),
    "images_zero_width-ubyte": (IDX("labels_count-ubyte"), r": the header promises 5 images of 0"),
    "images_bad_magic-ubyte": (IDX("labels_count-ubyte"), r": byte 0: not an IDX file"),
    "images_float_type-ubyte": (IDX("labels_count-ubyte"), r": byte 2: unsupported IDX element"),
    "images_header_cut-ubyte": (IDX("labels_count-ubyte"), r": the IDX header is cut short"),
    "images_4d-ubyte": (IDX("labels_count-ubyte"), r": byte 3: expected 1 to 3 dimensions"),
    "images_cut-ubyte.gz": (IDX("labels_count-ubyte"), r": the compressed file is damaged or cut"),
    "images_ok-ubyte": (IDX("labels_count-ubyte"), None),  # checked through the labels below
    "labels_count-ubyte": (["train", f"{corpus}/images_ok-ubyte", "--labels", "{f}", "--quiet"],
                           r": holds 5 labels for 3 images in "),
    "labels_2d-ubyte": (["train", f"{corpus}/images_ok-ubyte", "--labels", "{f}", "--quiet"],
                        r": expected labels \(a 1-dimensional IDX file\)"),
    # The labels become the images table's column 'label': the message names the images.
    "labels_one_class-ubyte": (["train", f"{corpus}/images_ok-ubyte", "--labels", "{f}",
                                "--quiet"], r": the target column 'label' has only one class",
                               f"{corpus}/images_ok-ubyte"),
    "model_empty.safetensors": (INFO, r": not a valid chainrule model: the file is shorter than"),
    "model_truncated.safetensors": (INFO, r": not a valid chainrule model: .*checksum"),
    "model_header_cut.safetensors": (INFO, r": not a valid chainrule model: the header length "
                                           r"\(\d+ bytes\) runs past the end of the file"),
    "model_bitflip_weight.safetensors": (INFO, r": not a valid chainrule model: its header and "
                                               r"tensor data do not match their checksum"),
    "model_bitflip_header.safetensors": (INFO, r": not a valid chainrule model: .*checksum"),
    "model_header_length_huge.safetensors": (INFO, r": not a valid chainrule model: the header "
                                                   r"length \(\d+ bytes\) runs past the end of the file"),
    "model_header_not_json.safetensors": (INFO, r": not a valid chainrule model: the header is "
                                                r"not JSON"),
    "model_wrong_version.safetensors": (INFO, r": not a valid chainrule model: format version 7, "
                                              r"this chainrule reads version 1"),
    "model_not_chainrule.safetensors": (INFO, r": not a valid chainrule model: its metadata does "
                                              r"not say format 'chainrule'"),
    "model_no_metadata.safetensors": (INFO, r": not a valid chainrule model: its header is "
                                            r"incomplete"),
    "model_wrong_shape.safetensors": (INFO, r": not a valid chainrule model: tensor "
                                            r"'layers.0.weight' has shape \[2,6\], the "
                                            r"architecture says \[3,2\]"),
    "model_unknown_dtype.safetensors": (INFO, r": not a valid chainrule model: tensor "
                                              r"'layers.0.weight' has dtype \"BF16\", expected F32"),
    "model_offsets_outside.safetensors": (INFO, r": not a valid chainrule model: tensor "
                                                r"'layers.1.bias' has data offsets outside"),
    "model_missing_tensor.safetensors": (INFO, r": not a valid chainrule model: tensor "
                                               r"'layers.1.bias' is missing"),
    "model_architecture_huge.safetensors": (INFO, r": not a valid chainrule model: "),
    "model_architecture_negative.safetensors": (INFO, r": not a valid chainrule model: layer 0 has "
                                                      r"-3 units: expected at least 1"),
    "model_unknown_activation.safetensors": (INFO, r": not a valid chainrule model: unknown "
                                                   r"activation 'gelu'"),
    "model_architecture_bfloat16.safetensors": (INFO, r": not a valid chainrule model: the "
                                                      r"architecture's dtype is bfloat16: expected "
                                                      r"float32 or float64"),
    "model_inputs_disagree.safetensors": (INFO, r": not a valid chainrule model: "),
    "model_zero_scale.safetensors": (INFO, r": not a valid chainrule model: feature 'a' has "
                                           r"scale 0"),
    "model_preprocessing_missing.safetensors": (INFO, r": not a valid chainrule model: its header "
                                                      r"is incomplete"),
    "checkpoint_bad_order.ckpt": (RESUME, r": not a valid chainrule model: tensor "
                                          r"'checkpoint.order' is not a permutation of the rows"),
    "checkpoint_bad_rng.ckpt": (RESUME, r": not a valid chainrule model: the saved random "
                                        r"generator state is not one"),
    "checkpoint_no_state.ckpt": (RESUME, r": a model file, not a checkpoint"),
    # Round two (issue 15).
    "model_nested_json.safetensors": (INFO, r": not a valid chainrule model: its JSON is nested "
                                            r"more than 32 levels deep"),
    "model_nested_metadata.safetensors": (PREDICT, r": not a valid chainrule model: its JSON is "
                                                   r"nested more than 32 levels deep"),
    "model_unsorted_categories.safetensors": (INFO, r": not a valid chainrule model: the "
                                                    r"categories of feature 'c' are not sorted"),
    "model_nan_weight.safetensors": (PREDICT, r": not a valid chainrule model: parameter 0 of the "
                                              r"flat buffer is NaN"),
    "model_classes_disagree.safetensors": (PREDICT, r": not a valid chainrule model: the output "
                                                    r"layer has 1 units, the 3 classes need 3"),
    "model_trailing_bytes.safetensors": (INFO, r": not a valid chainrule model: .*checksum"),
    "utf16_bom.csv": (TRAIN, r":1:1: the text is encoded as UTF-16LE: expected UTF-8 \(convert "
                             r"it: iconv -f UTF-16LE -t UTF-8\)"),
    "utf16_no_bom.csv": (TRAIN, r":1:1: the text is encoded as UTF-16BE"),
    "images_declared_huge-ubyte.gz": (IDX("labels_count-ubyte"),
                                      r": (the header promises 1000000000 bytes of data, the "
                                      r"file holds \d+|the compressed file is damaged or cut)"),
}

failures = []
# Under AddressSanitizer (scripts/sanitize) shadow memory and redzones inflate every allocation.
no_rss_limit = os.environ.get("CHAINRULE_NO_RSS_LIMIT") == "1"


def run(name, path, command, pattern, named):
    args = [a.format(f=path, work=work) for a in command]
    before = os.path.exists(f"{work}/out.safetensors")
    start = time.time()
    p = subprocess.Popen([chainrule, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        failures.append(f"{name}: still running after 60 s")
        return
    err = err.decode("utf-8", "replace")
    lines = err.splitlines()
    size = os.path.getsize(path)
    problems = []
    if p.returncode != 2:
        problems.append(f"exit code {p.returncode}")
    if len(lines) != 1:
        problems.append(f"{len(lines)} lines on stderr")
    expected_start = "chainrule: error: " + named
    if not lines or not lines[0].startswith(expected_start):
        problems.append("the line does not start with 'chainrule: error: <file>'")
    elif pattern and not re.match(pattern, lines[0][len(expected_start):]):
        problems.append(f"the message does not match /{pattern}/")
    if os.path.exists(f"{work}/out.safetensors") and not before:
        problems.append("a model file was written")
    status = "ok  " if not problems else "FAIL"
    print(f"{status} {name:42} {time.time() - start:5.2f} s  {err.strip()[:150]}", flush=True)
    if problems:
        failures.append(f"{name}: {', '.join(problems)}: {err.strip()}")


listed = set(CASES)
present = set(os.listdir(corpus)) - {"README.md"}
for name in sorted(present - listed):
    failures.append(f"{name}: in the corpus but not listed in bad_input_test.py")
for name in sorted(listed - present):
    failures.append(f"{name}: listed but not in the corpus")
for name in sorted(present & listed):
    command, pattern, *named = CASES[name]
    if pattern is None:
        continue
    run(name, f"{corpus}/{name}", command, pattern, named[0] if named else f"{corpus}/{name}")

# The large cases, generated here: memory must stay in proportion to the file.
big = f"{work}/single_line_100mb.csv"
with open(big, "w") as f:
    f.write("a," * (50 * 1024 * 1024 - 1) + "a")  # 100 MiB, no line break: a header, no rows
wide = f"{work}/million_columns.csv"
with open(wide, "w") as f:
    f.write(",".join(f"c{i}" for i in range(1_000_000)) + "\n")
    f.write(",".join("1" for _ in range(1_000_000)) + "\n")
    f.write(",".join("2" for _ in range(999_999)) + "\n")  # the third row is one field short
for name, path, pattern in (
        ("single_line_100mb.csv", big, r":1:\d+: more than 1000000 fields in a row: expected at "
                                       r"most 1000000 columns"),
        ("million_columns.csv", wide, r":3:\d+: expected 1000000 fields \(as in the header\), "
                                      r"found 999999")):
    start = time.time()
    p = subprocess.run(["/usr/bin/time", "-o", f"{work}/rss", "-f", "%M", chainrule,
                        *[a.format(f=path, work=work) for a in TRAIN]],
                       capture_output=True, text=True, timeout=120)
    err_lines = p.stderr.strip().splitlines()
    rss_mib = int(open(f"{work}/rss").read().split()[-1]) / 1024  # GNU time's %M: KiB
    message = err_lines[0] if err_lines else ""
    size_mib = os.path.getsize(path) / 2**20
    ok = (p.returncode == 2 and len(err_lines) == 1 and message.startswith("chainrule: error: " + path)
          and re.match(pattern, message[len("chainrule: error: " + path):])
          and (0 < rss_mib <= 100 + 16 * size_mib or no_rss_limit))
    print(f"{'ok  ' if ok else 'FAIL'} {name:42} {time.time() - start:5.2f} s  peak RSS "
          f"{rss_mib:.0f} MiB for {size_mib:.0f} MiB  {message[:120]}", flush=True)
    if not ok:
        failures.append(f"{name}: exit {p.returncode}, RSS {rss_mib:.0f} MiB: {p.stderr.strip()}")

print(f"{len(present)} corpus files + 2 generated; {len(failures)} failures")
for f in failures:
    print("FAIL", f)
sys.exit(1 if failures else 0)
