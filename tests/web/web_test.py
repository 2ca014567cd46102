#!/usr/bin/env python3
"""web_test.py — the web visualizer in headless Chromium (docs/WEB.md, docs/TESTING.md).

  web_test.py page WEB_DIR VMSIM OUT_DIR   step scenarios through the page's buttons and
        check what it shows against the CLI on the same scenario prefix: fault counts,
        the page-table entries the access read (`show walk`), TLB entries (`show tlb`),
        copy-on-write sharing and its end (`show pagemap`), swap slots, the IOMMU
        (`show iommu`), explain; then a screenshot (OUT_DIR/web.png) that must be the
        window's size, not blank, and show the lit entries.
  web_test.py cli WEB_DIR VMSIM            every example the page offers, stepped with the
        state read after every command: its counters (the page's `vmsim run --stats
        json` panel) equal `vmsim run --stats json` of the same file, member for member.

Exits 77 (ctest: skipped) with a message when Chromium, chromedriver or the web build
is missing; scripts/deps.sh installs them, so CI runs it. Prints "web_PAGE: N passed,
N failed" like the C tests.
"""
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import driver  # noqa: E402

SKIP = 77
passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("CHECK failed: " + what, flush=True)
    return cond


def cli_run(vmsim, text, *args):
    """vmsim run on a scenario text (a temporary file); stdout."""
    with tempfile.NamedTemporaryFile("w", suffix=".scn", delete=False) as f:
        f.write(text)
        path = f.name
    try:
        r = subprocess.run([vmsim, "run", *args, path], capture_output=True, text=True,
                           timeout=120)
        return r.stdout
    finally:
        os.unlink(path)


# ---- the page, driven through its buttons ----

class Page:
    def __init__(self, browser, web_dir):
        self.b = browser
        self.index = "file://" + os.path.join(os.path.abspath(web_dir), "index.html")

    def open(self, text=None, query=""):
        url = self.index + ("?" + query if query else "")
        if text is not None:
            url += "#scn=" + urllib.parse.quote(text)
        self.b.get("about:blank")  # a new hash alone would not reload the page
        self.b.get(url)
        self.b.wait("return document.body.dataset.state === 'done'")

    def click(self, id_):
        self.b.js("document.getElementById(arguments[0]).click()", id_)

    def text(self, id_):
        return self.b.js("return document.getElementById(arguments[0]).textContent", id_)

    def step(self, n=1):
        for _ in range(n):
            self.click("step")
        return self.text("status")

    def hot_ptes(self):
        """[(ptep, pte)] of the lit entries, root first (document order)."""
        return self.b.js("return [...document.querySelectorAll('#procs li.pte.hot')]"
                         ".map(e => [e.dataset.ptep, e.dataset.pte])")

    def tlb_rows(self, core, level):
        return self.b.js("return [...document.querySelectorAll("
                         "'table.tlb[data-core=\"' + arguments[0] + '\"][data-level=\"' + "
                         "arguments[1] + '\"] tr.tlb-entry')].map(r => [r.dataset.va, "
                         "r.dataset.pa, r.classList.contains('hot')])", str(core), level)

    def leaves(self, pid):
        """{va: (pa, classes)} of the present leaves of process pid's tree."""
        rows = self.b.js("return [...document.querySelectorAll('details.proc[data-pid=\"' + "
                         "arguments[0] + '\"] li.pte[data-pa]')].map(e => [e.dataset.va, "
                         "e.dataset.pa, e.className])", str(pid))
        return {int(va, 16): (int(pa, 16), cls) for va, pa, cls in rows}

    def slots(self):
        rows = self.b.js("return [...document.querySelectorAll('#procs li.pte[data-slot]')]"
                         ".map(e => [e.dataset.va, e.dataset.slot])")
        return {int(va, 16): int(slot) for va, slot in rows}


def walk_entries(out):
    """The entry values of the last `show walk` in CLI output."""
    block = out[out.rindex("page walk of"):]
    vals = []
    for line in block.splitlines()[1:]:
        m = re.search(r"entry 0x([0-9a-f]+)", line)
        if not m:
            break
        vals.append(int(m.group(1), 16))
    return vals


COW = ("spawn a\n"
       "mmap a 0x10000000 64K rw as buf\n"
       "write a buf \"hello\"\n"
       "fork a b\n"
       "read b buf 5 expect \"hello\"\n"
       "write b buf \"HELLO\"\n")


def cow_lines(n):
    return "".join(COW.splitlines(True)[:n])


def test_cow(page, vmsim):
    page.open(COW)
    check(page.text("status").startswith("ready"), "the page starts ready: " + page.text("status"))
    page.step(3)  # spawn, mmap, write: Step loads first
    check("line 3" in page.text("status"), "status after 3 steps: " + page.text("status"))
    pre = cow_lines(3)
    stats = json.loads(cli_run(vmsim, pre, "--stats", "json"))
    check(page.text("fault-pgfault") == str(stats["faults"]["total"]),
          "page faults %s == CLI %s" % (page.text("fault-pgfault"), stats["faults"]["total"]))
    check(page.text("fault-anon_alloc") == "1", "one zero-filled frame")
    out = cli_run(vmsim, pre + "show walk a buf\nshow tlb 0 l1d\nshow pagemap a buf 1\n")
    want = walk_entries(out)
    hot = page.hot_ptes()
    check(len(want) == 4 and [int(v, 16) for _, v in hot] == want,
          "lit entries %s == show walk %s" % (hot, [hex(v) for v in want]))
    m = re.search(r"TLB l1d of core 0: (\d+) of (\d+) entries valid", out)
    rows = page.tlb_rows(0, "l1d")
    check(m and len(rows) == int(m.group(1)), "L1d entries %d == CLI %s" %
          (len(rows), m.group(1) if m else "?"))
    m = re.search(r"va 0x10000000 -> pa (0x[0-9a-f]+)", out)
    check(m and any(int(va, 16) == 0x10000000 and int(pa, 16) == int(m.group(1), 16) and hot_
                    for va, pa, hot_ in rows), "the L1d entry of the page is lit and maps "
          "the CLI's frame: %s" % rows)
    # From the event tap: what the write's walks read (the CLI's narration counts them),
    # the four entries the kernel wrote (three new tables and the leaf), the TLB fill,
    # the fault and how it was resolved.
    m = re.search(r"(\d+) walks?, (\d+) entr(?:y|ies) read", out)
    note = page.text("walk-note")
    check(m and ("%s walk" % m.group(1)) in note and ("read %s entr" % m.group(2)) in note,
          "walk note %r agrees with the CLI's %r" % (note, m.group(0) if m else None))
    wr = page.b.js("return [...document.querySelectorAll('#procs li.pte.written')]"
                   ".map(e => e.dataset.ptep)")
    check(sorted(wr) == sorted(p for p, _ in hot), "the kernel wrote the walk's 4 entries: %s" % wr)
    check(page.b.js("return document.querySelectorAll('table.tlb[data-core=\"0\"] "
                    "tr.tlb-entry.filled').length") == 2, "the L1d and L2 fills are marked")
    sf = page.text("step-faults")
    check("#PF at 0x10000000 on core 0, error code 0x6" in sf and "minor: anon" in sf,
          "the step's fault and its resolution: %r" % sf)

    page.step(1)  # fork: the page is shared, read-only, by both
    out = cli_run(vmsim, cow_lines(4) + "show pagemap a buf 1\nshow pagemap b buf 1\n")
    pfns = re.findall(r"0x10000000: present( exclusive)? pfn (0x[0-9a-f]+)", out)
    la, lb = page.leaves(1), page.leaves(2)
    ok = len(pfns) == 2 and not pfns[0][0] and pfns[0][1] == pfns[1][1]
    check(ok, "CLI: one shared frame after fork: %s" % pfns)
    frame = int(pfns[0][1], 16) << 12 if ok else -1
    check(la.get(0x10000000, (0, ""))[0] == frame and lb.get(0x10000000, (0, ""))[0] == frame,
          "both trees map the CLI's frame 0x%x: %s %s" % (frame, la.get(0x10000000),
                                                         lb.get(0x10000000)))
    check("shared" in la.get(0x10000000, (0, ""))[1], "the parent's leaf is marked shared")
    shared = page.b.js("return [...document.querySelectorAll('#sharing tr.shared-frame')]"
                       ".map(r => r.dataset.pa)")
    check([int(p, 16) for p in shared] == [frame], "the sharing panel lists the frame: %s" % shared)

    page.step(2)  # b reads, then writes: its own copy
    check(page.text("status").startswith("done"), "done after the last write")
    stats = json.loads(cli_run(vmsim, COW, "--stats", "json"))
    check(page.text("fault-cow") == str(stats["faults"]["cow"]) == "1",
          "copy-on-write faults: page %s, CLI %s" % (page.text("fault-cow"),
                                                     stats["faults"]["cow"]))
    sf = page.text("step-faults")
    check("error code 0x7" in sf and "minor: cow_copy" in sf, "the COW fault: %r" % sf)
    out = cli_run(vmsim, COW + "show pagemap a buf 1\nshow pagemap b buf 1\nshow walk b buf\n")
    pfns = re.findall(r"0x10000000: present( exclusive)? pfn (0x[0-9a-f]+)", out)
    la, lb = page.leaves(1), page.leaves(2)
    check(len(pfns) == 2 and la[0x10000000][0] == int(pfns[0][1], 16) << 12 and
          lb[0x10000000][0] == int(pfns[1][1], 16) << 12 and pfns[0][1] != pfns[1][1],
          "after the write each maps its own frame, as the CLI's pagemap: %s %s %s" %
          (pfns, la.get(0x10000000), lb.get(0x10000000)))
    check(page.b.js("return document.querySelectorAll('#sharing tr.shared-frame').length") == 0,
          "nothing shared any more")
    # explain the last command's access by clicking its log line
    page.b.js("[...document.querySelectorAll('#log li.access')].pop().click()")
    ex = page.text("explain-out")
    leaf = walk_entries(out)[-1]
    check("Translating 0x10000000 (write, user mode) for b (pid 2" in ex and "%016x" % leaf in ex and
          "-> page" in ex, "explain narrates the leaf the CLI shows (0x%x):\n%s" % (leaf, ex))


SWAP = ("set ram=8M\nset swap=16M\n"
        "spawn hog\n"
        "mmap hog 0x20000000 12M rw as big\n"
        "touch hog big 12M write\n")


def test_swap(page, vmsim):
    page.open(SWAP, "steps=all")
    drawn = page.b.js("return document.querySelectorAll('#procs li.pte').length")
    check(drawn < 1024, "big tables are drawn folded (%d of 3072+ entries drawn)" % drawn)
    page.click("expand-all")
    got = page.slots()
    out = cli_run(vmsim, SWAP + "show pagemap hog big 64\n")
    want = {int(va, 16): int(slot) for va, slot in
            re.findall(r"(0x[0-9a-f]+): swapped, slot (\d+)", out)}
    check(len(want) > 0 and all(got.get(va) == s for va, s in want.items()),
          "swap slots of the first 64 pages: page %s, CLI %s" %
          (sorted(got.items())[:4], sorted(want.items())[:4]))
    stats = json.loads(cli_run(vmsim, SWAP, "--stats", "json"))
    st = page.text("step-swap")
    n = stats["swap"]["outs"]
    check(n > 0 and st.startswith("This step: %d swap I/O (%d out, 0 in" % (n, min(n, 128))),
          "the touch's swap-outs from the events (%d in the CLI): %r" % (n, st[:80]))
    summary = page.text("swap-summary")
    check(re.match(r"\d+ of 4095 slots in use", summary) is not None, "swap summary: " + summary)


def test_iommu(page, vmsim, src):
    path = os.path.join(src, "examples", "scenarios", "nic_iommu.scn")
    with open(path) as f:
        lines = f.read().splitlines(True)
    # up to the last `show iommu`: the page's IOMMU panel then shows what it printed
    last = max(i for i, l in enumerate(lines) if l.startswith("show iommu"))
    text = "".join(lines[:last])
    page.open(text, "steps=all")
    shown = page.text("iommu").strip()
    out = cli_run(vmsim, text + "show iommu\n")
    check(len(shown) > 20 and shown in out, "the IOMMU panel is the CLI's show iommu:\n" + shown)
    # the step of the blocked overflow DMA: the IOMMU's decision from the events
    cmds = [l for l in lines if l.strip() and not l.lstrip().startswith("#")]
    n = next(i + 1 for i, l in enumerate(cmds) if "overflow" in l)
    page.open("".join(lines), "steps=%d" % n)
    io = page.text("step-io")
    if page.b.js("return Object.keys(lastEvents.counts).some(t => t === 'dma' || t == 'iommu')"):
        check("iova 0x102000: BLOCKED" in io, "the blocked DMA in the step's IOMMU decisions: %r"
              % io)
    else:  # the tap reports DMA and IOMMU decisions from h15tap's next change on
        print("note: this library's event tap reports no DMA/IOMMU events; check not made")


def png_info(png):
    """(width, height, distinct colours, non-background fraction, has the lit colour)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w = 8, b"", 0
    while pos < len(png):
        n, kind = struct.unpack(">I4s", png[pos:pos + 8])
        body = png[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    bpp = {2: 3, 6: 4}[ctype]
    raw, stride = zlib.decompress(idat), w * bpp
    prev, colours, bg, lit, i = bytearray(stride), {}, None, False, 0
    for _ in range(h):  # undo the per-row filters (PNG spec §9)
        f, row = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = row[x - bpp] if x >= bpp else 0
            b, c = prev[x], prev[x - bpp] if x >= bpp else 0
            if f == 1:
                row[x] = (row[x] + a) & 255
            elif f == 2:
                row[x] = (row[x] + b) & 255
            elif f == 3:
                row[x] = (row[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                row[x] = (row[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        for x in range(0, stride, bpp * 4):  # every 4th pixel is plenty
            px = bytes(row[x:x + 3])
            colours[px] = colours.get(px, 0) + 1
            lit |= px == b"\xff\xd5\x4a"
        prev = row
    total = sum(colours.values())
    bg = max(colours.values())
    return w, h, len(colours), 1 - bg / total, lit


def test_screenshot(page, src, out_dir):
    demo = os.path.join(src, "examples", "scenarios", "demo.scn")
    with open(demo) as f:
        lines = f.read().splitlines()
    target = next(i + 1 for i, l in enumerate(lines) if l.startswith('write child heap "HELLO"'))
    page.open(None, "example=demo")
    for _ in range(200):
        page.step(1)
        last = page.b.js("return document.querySelector('#log li:last-child').dataset.line")
        if int(last) >= target:
            break
    check(int(last) == target, "stepped the demo to line %d (at %s)" % (target, last))
    page.b.js("[...document.querySelectorAll('#log li.access')].pop().click()")
    page.b.js("window.scrollTo(0, 0)")
    page.b.viewport(1400, 1000)
    png = page.b.screenshot(os.path.join(out_dir, "web.png"))
    w, h, ncol, busy, lit = png_info(png)
    check((w, h) == (1400, 1000), "screenshot %dx%d" % (w, h))
    check(len(png) > 40000, "screenshot of %d bytes" % len(png))
    check(ncol >= 32 and busy > 0.05, "not blank: %d colours, %.0f%% off the background" %
          (ncol, busy * 100))
    check(lit, "the lit entries' colour is on screen")
    dest = os.environ.get("VMS_WEB_SCREENSHOT")
    if dest:  # the README's picture: scripts regenerate it on request only
        with open(dest, "wb") as f:
            f.write(png)


def test_cli_equal(page, vmsim, src):
    page.open(None)
    names = page.b.js("return Object.keys(VMSIM_EXAMPLES)")
    check(len(names) >= 8, "the page offers the examples: %s" % names)
    for name in names:
        t0 = time.time()
        page.b.js("const s = document.getElementById('example'); s.value = arguments[0];"
                  "s.dispatchEvent(new Event('change'))", name)
        # the state read after every command (drawing it all is test_cow's job: slow here)
        page.b.js("while (stepOnce(false)) call('vw_state', [], []); render();")
        web = json.loads(page.text("stats-json"))
        path = os.path.join(src, "examples", "scenarios", name + ".scn")
        r = subprocess.run([vmsim, "run", "--stats", "json", path], capture_output=True,
                           text=True, timeout=120)
        cli = json.loads(r.stdout)
        check(web.get("finished") is True, name + ": the page ran it to the end")
        keys = [k for k in cli if k not in ("input", "build")]
        diff = [k for k in keys if cli[k] != web.get(k)]
        check(not diff and len(keys) > 20, "%s: page and CLI differ in %s" % (name, diff))
        print("  %-16s %d members equal (%.1f s)" % (name, len(keys) - len(diff),
                                                  time.time() - t0), flush=True)


def main():
    if len(sys.argv) < 4:
        print(__doc__)
        return 2
    mode, web_dir, vmsim = sys.argv[1:4]
    suite = "web_" + mode
    src = os.environ.get("VMS_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
    if not os.path.exists(os.path.join(web_dir, "vmsim_wasm.js")):
        print("%s: skipped: the web build is missing (%s/vmsim_wasm.js): install emscripten "
              "(scripts/deps.sh) and reconfigure" % (suite, web_dir))
        return SKIP
    found = driver.find_chromium()
    if not found:
        print("%s: skipped: chromium and chromedriver are not installed (scripts/deps.sh "
              "installs the Debian packages chromium and chromium-driver)" % suite)
        return SKIP
    b = driver.Browser(*found)
    try:
        page = Page(b, web_dir)
        if mode == "page":
            out_dir = sys.argv[4] if len(sys.argv) > 4 else tempfile.gettempdir()
            os.makedirs(out_dir, exist_ok=True)
            test_cow(page, vmsim)
            test_swap(page, vmsim)
            test_iommu(page, vmsim, src)
            test_screenshot(page, src, out_dir)
        else:
            test_cli_equal(page, vmsim, src)
        errors = [m for m in b.console() if m.get("level") == "SEVERE"]
        check(not errors, "no errors in the page's console: %s" % errors[:3])
    finally:
        b.close()
    print("%s: %d passed, %d failed" % (suite, passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
