#!/usr/bin/python3
"""The HTML pages of chainrule in a real browser (Debian's chromium and chromedriver through
python3-selenium, headless, pages loaded from file:// URLs):

- every page loads with no console error and no request other than its own file;
- the numbers in the DOM equal the program's JSON: curve points = the model's history
  (`info --json`), confusion-matrix cells and per-class metrics = `eval --json`, regression
  metrics = `eval --json`, and on the explain diagram every gradient, factor and finite
  difference = `explain --json`, for each of the four people and for a model's row;
- clicking or hovering a parameter highlights exactly the edges of its chain (computed here
  from explain --json's neurons: the parameter's own edge and every edge downstream of it);
- a live report (train --report) picks up new epochs while training runs and stops reloading
  when it ends;
- Chinese pages use a font with CJK glyphs (fonts-noto-cjk);
- screenshots (PNG) of the reports (iris, Fashion-MNIST, houses) and of the diagram (English
  and Chinese) are written to WORK_DIR.

Usage: browser_test.py CHAINRULE_BINARY WORK_DIR
"""
import atexit
import gzip
import json
import socket
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
from selenium import webdriver
from selenium.webdriver.chromium.remote_connection import ChromiumRemoteConnection
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

BIN, WORK = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
SK = "/usr/lib/python3/dist-packages/sklearn/datasets/data"
FASHION = "/usr/share/datasets/fashion-mnist"
HERE = os.path.dirname(os.path.abspath(__file__))
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL:", what, flush=True)


def close(a, b, rel=1e-12):
    return abs(a - b) <= rel * max(1.0, abs(a), abs(b))


def run(*args, **kw):
    r = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, cwd=WORK, **kw)
    if r.returncode != 0:
        raise SystemExit(f"chainrule {' '.join(map(str, args))} failed: {r.stderr}")
    return r.stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def browser():
    """chromedriver on 127.0.0.1 (started here, not through the name localhost, which a minimal
    Debian without /etc/hosts cannot resolve), headless chromium through it."""
    o = webdriver.ChromeOptions()
    o.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1200,1000", "--lang=en-US"):
        o.add_argument(a)
    o.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    port = free_port()
    server = subprocess.Popen(["/usr/bin/chromedriver", f"--port={port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    atexit.register(server.kill)
    for _ in range(300):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    connection = ChromiumRemoteConnection(f"http://127.0.0.1:{port}", "goog", "chrome")
    return webdriver.Remote(command_executor=connection, options=o)


def cdp(driver, cmd, params):
    """A DevTools command (what webdriver.Chrome's execute_cdp_cmd sends)."""
    return driver.execute("executeCdpCommand", {"cmd": cmd, "params": params})["value"]


def load(driver, path):
    """Loads a page, then checks the console and the requests it made."""
    driver.get_log("browser")
    driver.get_log("performance")
    url = "file://" + os.path.join(WORK, path)
    driver.get(url)
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    check(not errors, f"{path}: console errors {errors}")
    for entry in driver.get_log("performance"):
        m = json.loads(entry["message"])["message"]
        if m["method"] == "Network.requestWillBeSent":
            u = m["params"]["request"]["url"]
            check(u.startswith("file://" + WORK) or u.startswith("data:"),
                  f"{path}: a request to {u}")


def attr(el, name):
    return float(el.get_attribute(name))


def screenshot(driver, name, height=None):
    driver.execute_script("window.scrollTo(0, 0);")
    if height is None:
        height = driver.execute_script("return document.body.scrollHeight") + 40
    driver.set_window_size(1200, min(int(height), 6000))
    driver.save_screenshot(os.path.join(WORK, name))
    driver.set_window_size(1200, 1000)


# --- the explain diagram -------------------------------------------------------------------

def expected_chain(e, name):
    """The parameter's own edge (a weight) and every edge downstream of its neuron."""
    p = next(q for q in e["parameters"] if q["name"] == name)
    edges = [(i, n["name"], w) for n in e["neurons"] for i, w in zip(n["inputs"], n["weights"])]
    chain = {name} if "weight" in p["tensor"] else set()
    todo, seen = [p["to"]], set()
    while todo:
        at = todo.pop()
        if at in seen:
            continue
        seen.add(at)
        for a, b, w in edges:
            if a == at:
                chain.add(w)
                todo.append(b)
    return chain


def check_diagram(driver, page, explanations, label):
    """explanations: one explain --json per sample button, in order."""
    load(driver, page)
    buttons = driver.find_elements(By.CSS_SELECTOR, ".samples button")
    check(len(buttons) == len(explanations), f"{label}: {len(buttons)} sample buttons")
    for k, e in enumerate(explanations):
        if len(buttons) > 1:
            buttons[k].click()
        check(close(attr(driver.find_element(By.ID, "loss"), "data-value"), e["loss"]["value"]),
              f"{label} sample {k}: loss")
        rows = driver.find_elements(By.CSS_SELECTOR, "#params tr[data-param]")
        check(len(rows) == len(e["parameters"]), f"{label} sample {k}: {len(rows)} rows")
        for row, p in zip(rows, e["parameters"]):
            name = p["name"]
            check(row.get_attribute("data-param") == name, f"{label}: row {name}")
            td = lambda c: attr(row.find_element(By.CSS_SELECTOR, c), "data-value")
            check(close(td(".gradient"), p["gradient"]), f"{label} {k} {name}: gradient")
            check(close(td(".fd"), p["finite_difference"]), f"{label} {k} {name}: fd")
            factors = [attr(f, "data-value") for f in row.find_elements(By.CSS_SELECTOR, ".factor")]
            check(len(factors) == len(p["factors"]) and
                  all(close(a, b["value"]) for a, b in zip(factors, p["factors"])),
                  f"{label} {k} {name}: factors {factors}")
            row.click()  # a real click: the chain lights up, the panel shows the factors
            panel = driver.find_element(By.ID, "panel")
            check(panel.get_attribute("data-param") == name, f"{label} {k} {name}: panel")
            shown = [attr(f, "data-value") for f in panel.find_elements(By.CSS_SELECTOR, ".factor")]
            check(all(close(a, b["value"]) for a, b in zip(shown, p["factors"])) and
                  len(shown) == len(p["factors"]), f"{label} {k} {name}: panel factors")
            check(close(attr(panel.find_element(By.CSS_SELECTOR, ".gradient"), "data-value"),
                         p["gradient"]), f"{label} {k} {name}: panel gradient")
            lit = {el.get_attribute("data-param") for el in
                   driver.find_elements(By.CSS_SELECTOR, "#diagram .edge.chain")}
            want = expected_chain(e, name)
            drawn = {el.get_attribute("data-param") for el in
                     driver.find_elements(By.CSS_SELECTOR, "#diagram .edge")}
            check(lit == want & drawn, f"{label} {k} {name}: chain {sorted(lit)} != {sorted(want & drawn)}")
        # Neuron values on the diagram.
        zs = sorted(attr(el, "data-z") for el in driver.find_elements(By.CSS_SELECTOR, "#diagram text[data-z]"))
        if len(e["neurons"]) <= 24:
            check(all(close(a, b) for a, b in zip(zs, sorted(n["z"] for n in e["neurons"]))) and
                  len(zs) == len(e["neurons"]), f"{label} {k}: neuron z values")


def hover_check(driver, e):
    """A real mouse hover over a parameter's label lights its chain."""
    label = driver.find_element(By.CSS_SELECTOR, "#diagram text.plabel[data-param='w5']")
    ActionChains(driver).move_to_element(label).perform()
    time.sleep(0.2)
    lit = {el.get_attribute("data-param") for el in
           driver.find_elements(By.CSS_SELECTOR, "#diagram .edge.chain")}
    check(lit == expected_chain(e, "w5"), f"hover over w5: chain {lit}")
    check(driver.find_element(By.ID, "panel").get_attribute("data-param") == "w5", "hover: panel")


def cjk_font(driver):
    """The fonts Chromium really drew the title with (DevTools' CSS.getPlatformFontsForNode):
    one of them must have the Chinese glyphs (not boxes)."""
    cdp(driver, "DOM.enable", {})
    cdp(driver, "CSS.enable", {})
    root = cdp(driver, "DOM.getDocument", {})["root"]["nodeId"]
    h1 = cdp(driver, "DOM.querySelector", {"nodeId": root, "selector": "h1"})["nodeId"]
    h1 = cdp(driver, "DOM.describeNode", {"nodeId": h1, "depth": 1})["node"]
    text = next(c for c in h1["children"] if c["nodeType"] == 3)  # the text node
    node = cdp(driver, "DOM.pushNodesByBackendIdsToFrontend",
                                  {"backendNodeIds": [text["backendNodeId"]]})["nodeIds"][0]
    fonts = cdp(driver, "CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    print("fonts of the Chinese title:", fonts)
    return any("CJK" in f["familyName"] or "Hei" in f["familyName"] for f in fonts)


# --- the report ----------------------------------------------------------------------------

def check_curves(driver, history, label):
    n = int(driver.find_element(By.ID, "epochs-run").get_attribute("data-epochs"))
    check(n == len(history), f"{label}: {n} epochs shown, {len(history)} in the model")
    for series, key in (("train_loss", "train_loss"), ("val_loss", "val_loss"),
                        ("val_metric", "val_metric"), ("lr", "lr")):
        pts = driver.find_elements(By.CSS_SELECTOR, f"circle.pt[data-series='{series}']")
        want = [(h["epoch"], h[key]) for h in history if key in h]
        got = [(attr(p, "data-x"), attr(p, "data-y")) for p in pts]
        check(len(got) == len(want) and all(a == x and close(b, y) for (a, b), (x, y) in zip(got, want)),
              f"{label}: the {series} curve ({len(got)} points, {len(want)} epochs)")


def check_classification(driver, ev, label):
    K = len(ev["confusion_matrix"])
    cells = driver.find_elements(By.CSS_SELECTOR, "#confusion td[data-count]")
    check(len(cells) == K * K, f"{label}: {len(cells)} confusion cells")
    for c in cells:
        i, j = int(c.get_attribute("data-true")), int(c.get_attribute("data-pred"))
        check(int(c.get_attribute("data-count")) == ev["confusion_matrix"][i][j],
              f"{label}: confusion[{i}][{j}]")
        row = sum(ev["confusion_matrix"][i])
        check(close(attr(c, "data-share"), ev["confusion_matrix"][i][j] / row if row else 0),
              f"{label}: row share [{i}][{j}]")
    rows = driver.find_elements(By.CSS_SELECTOR, "#per-class tr[data-class]")
    check(len(rows) == len(ev["classes"]), f"{label}: {len(rows)} per-class rows")
    for r, c in zip(rows, ev["classes"]):
        v = [float(td.get_attribute("data-value")) for td in r.find_elements(By.CSS_SELECTOR, "td[data-value]")]
        check(r.get_attribute("data-class") == c["class"] and
              all(close(a, b) for a, b in zip(v, [c["precision"], c["recall"], c["f1"], c["support"]])),
              f"{label}: class {c['class']} metrics {v}")
    check(close(attr(driver.find_element(By.ID, "accuracy"), "data-value"), ev["accuracy"]),
          f"{label}: accuracy")


def history_of(model):
    return json.loads(run("info", model, "--json"))["metrics"]["history"]


def write_iris():
    a = np.loadtxt(f"{SK}/iris.csv", delimiter=",", skiprows=1)
    names = ["setosa", "versicolor", "virginica"]
    with open(os.path.join(WORK, "iris.csv"), "w") as f:
        f.write("sepal_length,sepal_width,petal_length,petal_width,species\n")
        for r in a:
            f.write(",".join(f"{v:g}" for v in r[:4]) + f",{names[int(r[4])]}\n")


def live_report(driver):
    """A running training's report, open in the browser, shows new epochs by itself; once the run
    ends (here by Ctrl-C, so that the test does not depend on how fast this machine trains), the
    final page stops reloading."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, 16))
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int)
    np.savetxt(os.path.join(WORK, "live.csv"), np.column_stack([X, y]), delimiter=",",
               header=",".join([f"x{i}" for i in range(16)] + ["y"]), comments="", fmt="%.5f")
    for old in ("live.html", "live.safetensors", "live.safetensors.ckpt"):
        if os.path.exists(os.path.join(WORK, old)):
            os.remove(os.path.join(WORK, old))
    # Per-sample steps of 16-128-128-1, for as long as the test needs: it stops the run itself.
    proc = subprocess.Popen([BIN, "train", "live.csv", "--layers", "128,128", "--batch", "1",
                             "--epochs", "1000000", "--patience", "0", "--val", "0.2", "--out",
                             "live.safetensors", "--report", "live.html", "--quiet", "--threads", "1"],
                            cwd=WORK, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    page = os.path.join(WORK, "live.html")
    for _ in range(200):
        if os.path.exists(page):
            break
        time.sleep(0.05)
    load(driver, "live.html")
    check(driver.find_element(By.ID, "status").get_attribute("data-status") == "running",
          "live: the first page says running")
    seen = set()
    deadline = time.time() + 120
    while proc.poll() is None and time.time() < deadline and len({s for s in seen if s > 0}) < 3:
        try:
            seen.add(int(driver.find_element(By.ID, "epochs-run").get_attribute("data-epochs")))
        except Exception:  # between reloads, or before the first epoch
            pass
        time.sleep(0.3)
    check(proc.poll() is None, "live: training ended by itself")
    check(len({s for s in seen if s > 0}) >= 2,
          f"live: the open page showed epochs {sorted(seen)} while training ran (without a reload by the test)")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    check(proc.returncode == 130, f"live: train exited {proc.returncode} on Ctrl-C: {err}")
    m = re.search(r"interrupted after epoch (\d+)", err)
    check(m is not None, f"live: the message of an interrupted run: {err}")
    done = int(m.group(1)) - 1 if m else -1  # epochs completed
    print(f"live: the open page showed epochs {sorted(seen)}; Ctrl-C after {done} epochs")
    time.sleep(3)  # the page's own reload picks up the final file
    driver.execute_script("window.__still = 1;")
    time.sleep(4)  # a page that still reloaded would lose this mark
    check(driver.execute_script("return window.__still === 1;"), "live: the final page still reloads")
    check(driver.find_element(By.ID, "status").get_attribute("data-status") == "interrupted",
          "live: the final page says interrupted")
    check(not driver.find_elements(By.CSS_SELECTOR, "meta[http-equiv='refresh']"),
          "live: the final page keeps its refresh")
    n = int(driver.find_element(By.ID, "epochs-run").get_attribute("data-epochs"))
    check(n == done and max(seen) <= n, f"live: the final page shows {n} epochs, the run completed {done}")
    for series in ("train_loss", "val_loss", "val_metric", "lr"):
        pts = driver.find_elements(By.CSS_SELECTOR, f"circle.pt[data-series='{series}']")
        check([int(attr(p, "data-x")) for p in pts] == list(range(1, n + 1)),
              f"live: the {series} curve has one point per epoch ({len(pts)} of {n})")


def hostile_names(driver):
    """Column names and classes that are markup: shown as text, never run or parsed."""
    evil = "</script><script>alert(1)</script><!--"
    rng = np.random.default_rng(1)
    with open(os.path.join(WORK, "hostile.csv"), "w") as f:
        f.write(f'"{evil}",a&b,y\n')
        for _ in range(60):
            u, v = rng.normal(size=2)
            f.write(f"{u:.4f},{v:.4f},{'<i>x</i>' if u + v > 0 else '&amp;'}\n")
    run("train", "hostile.csv", "--layers", "3", "--epochs", "5", "--out", "hostile.safetensors",
        "--report", "hostile.html", "--quiet")
    run("explain", "hostile.safetensors", "hostile.csv", "--row", "2", "--html", "hostile-row.html")
    for page in ("hostile.html", "hostile-row.html"):
        load(driver, page)  # an alert would fail every command after it
        check(driver.execute_script("return document.querySelectorAll('script').length") == 
              (1 if page == "hostile.html" else 3), f"{page}: a script element was injected")
    load(driver, "hostile.html")
    classes = [r.get_attribute("data-class") for r in
               driver.find_elements(By.CSS_SELECTOR, "#per-class tr[data-class]")]
    check(classes == ["&amp;", "<i>x</i>"], f"hostile: classes {classes}")
    check(evil in driver.find_element(By.ID, "features").text, "hostile: the column name as text")
    load(driver, "hostile-row.html")
    inputs = [t.text for t in driver.find_elements(By.CSS_SELECTOR, "#diagram text.name")]
    check(any(t.startswith("</scrip") for t in inputs), f"hostile diagram: names {inputs}")


def main():
    os.makedirs(WORK, exist_ok=True)
    driver = browser()
    try:
        # The tutorial's diagram, English and Chinese, all four people.
        people = ["youge", "share", "naive", "beyes"]
        tut = [json.loads(run("explain", "--json", "--sample", p)) for p in people]
        run("explain", "--html", "diagram.html")
        check_diagram(driver, "diagram.html", tut, "diagram")
        driver.find_elements(By.CSS_SELECTOR, ".samples button")[0].click()
        hover_check(driver, tut[0])
        screenshot(driver, "diagram-en.png", 1100)
        run("explain", "--html", "diagram-zh.html", "--lang", "zh")
        tut_zh = [json.loads(run("explain", "--json", "--sample", p, "--lang", "zh")) for p in people]
        check_diagram(driver, "diagram-zh.html", tut_zh, "diagram zh")
        check("反向传播就是链式法则" in driver.find_element(By.TAG_NAME, "h1").text, "zh: the title")
        check(cjk_font(driver), "zh: no CJK font (fonts-noto-cjk) for the page's font stack")
        driver.find_elements(By.CSS_SELECTOR, ".samples button")[1].click()
        driver.find_element(By.CSS_SELECTOR, "#params tr[data-param='w1']").click()
        screenshot(driver, "diagram-zh.png", 1100)
        # Random weights, another person first: the same checks.
        tut_r = [json.loads(run("explain", "--json", "--sample", p, "--weights", "random", "--seed", "7"))
                 for p in people]
        run("explain", "--html", "diagram-random.html", "--weights", "random", "--seed", "7",
            "--sample", "naive")
        check_diagram(driver, "diagram-random.html", tut_r, "diagram random")

        # Iris: train --report, then the report command in Chinese; a model row's diagram.
        write_iris()
        run("train", "iris.csv", "--layers", "8", "--epochs", "80", "--lr", "0.01", "--val", "0.2", "--out",
            "iris.safetensors", "--report", "iris.html", "--quiet")
        ev = json.loads(run("eval", "iris.safetensors", "iris.csv", "--json"))
        hist = history_of("iris.safetensors")
        load(driver, "iris.html")
        check(driver.find_element(By.ID, "status").get_attribute("data-status") == "done", "iris: done")
        check(not driver.find_elements(By.CSS_SELECTOR, "meta[http-equiv='refresh']"),
              "iris: the page of a finished run keeps its refresh")
        check_curves(driver, hist, "iris")
        check_classification(driver, ev, "iris")
        check(len(driver.find_elements(By.CSS_SELECTOR, "#network line.edge")) == 4 * 8 + 8 * 3,
              "iris: every weight drawn")
        edge = driver.find_element(By.CSS_SELECTOR, "#network line.edge[data-param='layers.1.weight[2,5]']")
        ActionChains(driver).move_to_element(edge).perform()
        time.sleep(0.2)
        tip = driver.find_element(By.CSS_SELECTOR, ".tip")
        check(tip.is_displayed() and "layers.1.weight[" in tip.text, f"iris: hover tip '{tip.text}'")
        screenshot(driver, "report-iris.png")
        run("report", "iris.safetensors", "iris.csv", "--out", "iris-zh.html", "--lang", "zh")
        load(driver, "iris-zh.html")
        check("训练报告" in driver.find_element(By.TAG_NAME, "h1").text, "iris zh: title")
        check_curves(driver, hist, "iris zh")
        check_classification(driver, ev, "iris zh")
        check(cjk_font(driver), "iris zh: CJK font")
        row = json.loads(run("explain", "iris.safetensors", "iris.csv", "--row", "77", "--json"))
        run("explain", "iris.safetensors", "iris.csv", "--row", "77", "--html", "iris-row.html")
        check_diagram(driver, "iris-row.html", [row], "iris row 77")

        # Regression: houses (a real-data look-alike with gaps).
        run("train", os.path.join(HERE, "..", "data", "real", "houses.csv"), "--target", "price",
            "--impute", "mean", "--layers", "16", "--epochs", "40", "--out", "houses.safetensors",
            "--quiet")
        houses = os.path.join(HERE, "..", "data", "real", "houses.csv")
        run("report", "houses.safetensors", houses, "--out", "houses.html")
        evh = json.loads(run("eval", "houses.safetensors", houses, "--json"))
        load(driver, "houses.html")
        for key in ("mse", "mae", "r2"):
            check(close(attr(driver.find_element(By.ID, key), "data-value"), evh[key]), f"houses: {key}")
        dots = driver.find_elements(By.CSS_SELECTOR, "#chart-predicted circle.dot")
        check(len(dots) == evh["rows"], f"houses: {len(dots)} points for {evh['rows']} rows")
        check_curves(driver, history_of("houses.safetensors"), "houses")
        screenshot(driver, "report-houses.png")

        # Fashion-MNIST: a large network (one block per layer), evaluated on the test images.
        if os.path.exists(f"{FASHION}/train-images-idx3-ubyte.gz"):
            run("train", f"{FASHION}/train-images-idx3-ubyte.gz", "--labels",
                f"{FASHION}/train-labels-idx1-ubyte.gz", "--layers", "64", "--epochs", "2",
                "--val", "0.1", "--out", "fashion.safetensors", "--quiet")
            run("report", "fashion.safetensors", f"{FASHION}/t10k-images-idx3-ubyte.gz", "--labels",
                f"{FASHION}/t10k-labels-idx1-ubyte.gz", "--out", "fashion.html")
            evf = json.loads(run("eval", "fashion.safetensors", f"{FASHION}/t10k-images-idx3-ubyte.gz",
                                 "--labels", f"{FASHION}/t10k-labels-idx1-ubyte.gz", "--json"))
            load(driver, "fashion.html")
            check_classification(driver, evf, "fashion")
            check_curves(driver, history_of("fashion.safetensors"), "fashion")
            blocks = driver.find_elements(By.CSS_SELECTOR, "#layers .layer")
            check(len(blocks) == 2, f"fashion: {len(blocks)} layer blocks")
            bars = driver.find_elements(By.CSS_SELECTOR, "#layers .layer[data-layer='0'] svg.hist")
            check(len(bars) == 2, "fashion: layer 0 has a weight and a gradient histogram")
            counts = sum(int(b.get_attribute("data-count")) for b in
                         bars[0].find_elements(By.CSS_SELECTOR, "rect.bar"))
            check(counts == 784 * 64, f"fashion: the weight histogram counts {counts} weights")
            screenshot(driver, "report-fashion.png")

        hostile_names(driver)
        live_report(driver)
    finally:
        driver.quit()
    if failures:
        print(f"{len(failures)} failures")
        sys.exit(1)
    print("browser tests passed")


if __name__ == "__main__":
    main()
