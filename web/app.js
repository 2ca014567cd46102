/*
 * app.js — the web visualizer's page logic (docs/WEB.md). It calls the library through
 * the glue's JSON functions (web/vmsim_web.c: vw_load, vw_step, vw_state, vw_stats,
 * vw_explain) and draws what they return; it computes nothing about the machine itself.
 *
 * URL parameters (for links and for the headless test, tests/web/web.sh):
 *   ?example=NAME          load examples/scenarios/NAME.scn
 *   #scn=TEXT              load this scenario text (URI-encoded), instead
 *   &preset=NAME           the machine preset;  &set=KEY=VALUE (repeatable)
 *   &steps=N|all           step N commands (or all) once loaded
 *   &explain=PROC,VA,KIND  then explain that access
 * When the steps are done, <body data-state="done"> tells a test the page has settled.
 */
"use strict";

let vm = null;          /* the emscripten module */
let loaded = false;     /* a scenario is loaded */
let finished = false;   /* it ran to the end */
let steps = 0;          /* commands stepped */
let lastAccess = null;  /* the last step's access {proc, va, len, kind, path} */
let lastEvents = null;  /* what the event tap reported during the last step (vw_step) */
let playTimer = null;
let lineOf = [];        /* log item -> scenario line */
let lastState = null;

const $ = (id) => document.getElementById(id);

function call(name, types, args) {
  const text = vm.ccall(name, "string", types, args);
  try {
    return JSON.parse(text);
  } catch (e) {
    return { ok: false, error: "bad JSON from " + name + ": " + e.message };
  }
}

function setStatus(text, cls) {
  const s = $("status");
  s.textContent = text;
  s.className = cls || "";
}

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const k of kids) e.append(k);
  return e;
}

/* ---- loading and stepping ---- */

function params() {
  const q = new URLSearchParams(location.search);
  const h = new URLSearchParams(location.hash.replace(/^#/, ""));
  return { q, scn: h.get("scn") };
}

function load() {
  stopPlay();
  const sets = params().q.getAll("set").join("\n");
  const r = call("vw_load", ["string", "string", "string", "string"],
                 [$("example").value + ".scn", $("scenario").value, $("preset").value, sets]);
  $("log").replaceChildren();
  lineOf = [];
  steps = 0;
  finished = false;
  lastAccess = null;
  lastEvents = null;
  loaded = r.ok;
  if (!r.ok) {
    setStatus(r.error, "error");
    return false;
  }
  $("version").textContent = r.version;
  setStatus("loaded: " + r.cores + " core" + (r.cores > 1 ? "s" : "") + ", " + r.levels +
            "-level tables; press Step", "ok");
  render();
  return true;
}

/* Run one command; false when there was none left or it failed to load. */
function stepOnce(draw) {
  if (!loaded && !load()) return false;
  if (finished) return false;
  const r = call("vw_step", [], []);
  if (!r.ok) {
    setStatus(r.error, "error");
    return false;
  }
  steps++;
  finished = r.done;
  lastAccess = r.access || null;
  lastEvents = r.events || null;
  addLog(r);
  if (draw) render();
  if (r.error) setStatus(r.error, "error");
  else setStatus(finished ? "done: " + steps + " commands" : "line " + r.line + " (step " +
                 steps + ")", "ok");
  return !finished;
}

function addLog(r) {
  const li = el("li", { "data-line": String(r.line) });
  li.append(el("span", { class: "lineno" }, "line " + r.line));
  if (r.out) li.append(el("pre", { class: "out" }, r.out.replace(/\n$/, "")));
  if (r.log) li.append(el("pre", { class: "klog" }, r.log.replace(/\n$/, "")));
  if (r.err) li.append(el("pre", { class: "err" }, r.err.replace(/\n$/, "")));
  if (r.events && r.events.total) li.append(el("div", { class: "evsum" }, eventSummary(r.events)));
  if (r.access) {
    li.classList.add("access");
    li.dataset.proc = r.access.proc;
    li.dataset.va = r.access.va;
    li.dataset.kind = r.access.kind;
    li.title = "explain " + r.access.kind + " of " + r.access.va + " by " + r.access.proc;
    li.addEventListener("click", () => explain(r.access.proc, r.access.va, r.access.kind));
  }
  $("log").append(li);
  li.scrollIntoView({ block: "nearest" });
}

function runToEnd() {
  stopPlay();
  while (stepOnce(false));
  render();
}

function play() {
  if (playTimer) return stopPlay();
  $("play").textContent = "Pause";
  playTimer = setInterval(() => {
    if (!stepOnce(true)) stopPlay();
  }, 300);
}

function stopPlay() {
  if (playTimer) clearInterval(playTimer);
  playTimer = null;
  $("play").textContent = "Play";
}

/* ---- what the last step did, from the event tap (vmsim/events.h) ---- */

/* The entries the last step's walks read (physical addresses), as the events report
 * them; before any event (or from an older glue) the walk path of the last access. */
function litEntries() {
  if (lastEvents) return new Set(lastEvents.read.map((r) => r.ptep));
  return new Set(lastAccess && lastAccess.path ? lastAccess.path : []);
}

function written() {
  return new Set(lastEvents ? lastEvents.written.map((w) => w.ptep) : []);
}

function setBits() {
  const m = new Map();
  if (lastEvents)
    for (const r of lastEvents.read) if (BigInt(r.set) !== 0n) m.set(r.ptep, BigInt(r.set));
  return m;
}

/* The bits a walker set, by name where the format is x86-64's (A = bit 5, D = bit 6). */
function adNames(p, set) {
  if (!p.format.startsWith("x86-64")) return "0x" + set.toString(16);
  const names = [];
  if (set & 0x20n) names.push("A");
  if (set & 0x40n) names.push("D");
  if (set & ~0x60n) names.push("0x" + (set & ~0x60n).toString(16));
  return names.join(" ");
}

function filled(core, level, va) {
  return !!lastEvents && lastEvents.fills.some((f) => f.core === core && f.level === level &&
                                                 BigInt(f.va) === BigInt(va));
}

function eventSummary(ev) {
  const parts = Object.entries(ev.counts).map(([t, n]) => t + " " + n);
  return "events: " + ev.total + " (" + parts.join(", ") + ")";
}

/* A fault and how the kernel resolved it, in words. */
function faultText(f, r) {
  let t = (f.kind === "pf" ? "#PF" : f.kind) + " at " + f.va + " on core " + f.core +
          ", error code " + f.error_code + (f.tlb_hit ? " (rights cached in the TLB)" : "");
  if (r) t += " → " + r.result + (r.how.length ? ": " + r.how.join(", ") : "") +
              (r.fault_around ? ", " + r.fault_around + " pages mapped around" : "") +
              " (pid " + r.pid + ")";
  return t;
}

function renderStep() {
  const ev = lastEvents;
  const note = $("walk-note");
  const faults = $("step-faults"), sw = $("step-swap"), io = $("step-io"), tl = $("events");
  if (!ev) {
    note.textContent = "";
    faults.replaceChildren();
    sw.textContent = io.textContent = "";
    tl.textContent = "";
    return;
  }
  const walks = ev.counts.walk || 0, reads = ev.counts.walk_step || 0;
  note.textContent = "Last step: " + walks + " walk" + (walks === 1 ? "" : "s") + " read " +
    reads + " entr" + (reads === 1 ? "y" : "ies") + " (" + ev.read.length + " distinct, lit" +
    (ev.read_more ? ", more not lit" : "") + "); the kernel wrote " + ev.written.length +
    " entr" + (ev.written.length === 1 ? "y" : "ies") + " (outlined" +
    (ev.written_more ? ", more not outlined" : "") + ")" +
    ((ev.counts.tlb_lookup || 0) && !walks ? "; TLB hits: no walk" : "") + ".";
  const items = [];
  for (let i = 0; i < ev.faults.length; i++) {
    const f = ev.faults[i];
    if (f.type !== "fault") continue;
    const r = ev.faults.slice(i + 1).find((x) => x.type === "fault_resolved");
    items.push(el("li", { class: "step-fault" }, faultText(f, r)));
  }
  if (ev.faults_dropped) items.push(el("li", {}, "… and " + ev.faults_dropped + " more events"));
  faults.replaceChildren(...items);
  const outs = ev.swap.filter((x) => x.dir === "out").length, ins = ev.swap.length - outs;
  sw.textContent = (ev.counts.swap || 0)
    ? "This step: " + (ev.counts.swap || 0) + " swap I/O (" + outs + " out, " + ins + " in" +
      (ev.swap_dropped ? ", first " + ev.swap.length + " listed" : "") + "): " +
      ev.swap.slice(0, 16).map((x) => x.dir + " slot " + x.slot + " frame " + x.pfn).join("; ")
    : "";
  io.textContent = ev.io.map((x) => x.type === "iommu"
    ? "IOMMU " + x.rid + " " + (x.write ? "write" : "read") + " iova " + x.iova + ": " +
      (x.ok ? (x.hit ? "IOTLB hit" : "walked") + " -> " + x.pa : "BLOCKED")
    : "DMA " + x.rid + " " + (x.write ? "write" : "read") + " iova " + x.iova + " " + x.len +
      " bytes: " + (x.ok ? "done" : "stopped")).join("\n");
  tl.textContent = ev.timeline.map((x) => JSON.stringify(x)).join("\n") +
    (ev.timeline_dropped ? "\n… and " + ev.timeline_dropped + " more" : "");
  $("events-count").textContent = String(ev.total);
}

/* ---- drawing the state ---- */

function render() {
  const s = call("vw_state", [], []);
  if (!s.ok) return;
  lastState = s;
  renderFaults(s);
  renderCores(s);
  renderProcs(s);
  renderSharing(s);
  renderSwap(s);
  renderStep();
  $("iommu").textContent = s.iommu || "(no device attached)";
  $("iommu-when").textContent = s.iommu_final ? " (as the last command left it: the run's end " +
    "detaches the scenario's devices)" : "";
  $("dmesg").textContent = s.dmesg;
  $("stats-json").textContent = vm.ccall("vw_stats", "string", [], []);
  const sel = $("ex-proc"), keep = sel.value;
  sel.replaceChildren(...s.procs.filter((p) => p.alive)
                          .map((p) => el("option", { value: p.name }, p.name + " (pid " + p.pid + ")")));
  if ([...sel.options].some((o) => o.value === keep)) sel.value = keep;
}

const FAULT_ROWS = [
  ["pgfault", "page faults"], ["minor", "minor"], ["major", "major (I/O)"],
  ["zero_page", "zero page mapped"], ["anon_alloc", "zero-filled frames"],
  ["cow", "copy-on-write"], ["cow_copy", "… copied"], ["cow_reuse", "… reused"],
  ["segv", "SIGSEGV"], ["sigbus", "SIGBUS"], ["pswpout", "pages swapped out"],
  ["pswpin", "pages swapped in"],
];

function renderFaults(s) {
  const t = $("faults");
  t.replaceChildren(...FAULT_ROWS.map(([k, label]) =>
    el("tr", { "data-key": k }, el("th", {}, label),
       el("td", { id: "fault-" + k }, String(s.faults[k])))));
}

function hexBig(s) { return BigInt(s); }

function pageOf(va, size) {
  const bytes = { "4K": 4096n, "2M": 2097152n, "1G": 1073741824n }[size] || 4096n;
  return hexBig(va) & ~(bytes - 1n);
}

function renderCores(s) {
  const box = $("cores");
  box.replaceChildren();
  const accVa = lastAccess ? hexBig(lastAccess.va) : null;
  for (const c of s.cores) {
    const d = el("div", { class: "core", "data-core": String(c.id) });
    d.append(el("h3", {}, "core " + c.id + " — CR3 " + c.cr3 + ", " + c.walks + " walks, " +
                c.walk_refs + " entries read"));
    for (const [name, tlb] of Object.entries(c.tlbs)) {
      const tbl = el("table", { class: "tlb", "data-core": String(c.id), "data-level": name });
      tbl.append(el("caption", {}, name.toUpperCase() + ": " + tlb.count + " of " + tlb.capacity +
                    " valid; " + tlb.hits + " hits, " + tlb.misses + " misses"));
      tbl.append(el("tr", {}, ...["set", "way", "pcid", "va", "pa", "size", "rights"]
                    .map((h) => el("th", {}, h))));
      for (const e of tlb.entries) {
        const tr = el("tr", { class: "tlb-entry", "data-va": e.va, "data-pa": e.pa });
        if (accVa !== null && pageOf(lastAccess.va, e.size) === hexBig(e.va)) tr.classList.add("hot");
        if (filled(c.id, name, e.va)) tr.classList.add("filled");
        tr.append(...[e.set, e.way, e.pcid, e.va, e.pa, e.size,
                      (e.rw ? "rw" : "r-") + (e.user ? " user" : " kernel") +
                      (e.global ? " global" : "") + (e.dirty ? " dirty" : "")]
                      .map((v) => el("td", {}, String(v))));
        tbl.append(tr);
      }
      d.append(tbl);
    }
    if (c.pwc) {
      const p = el("table", { class: "pwc", "data-core": String(c.id) });
      p.append(el("caption", {}, "page-walk caches: " + c.pwc.lookups + " lookups, " +
                  c.pwc.misses + " misses, " + c.pwc.fills + " fills"));
      p.append(el("tr", {}, el("th", {}, "level"), el("th", {}, "entries"), el("th", {}, "hits")));
      for (const l of c.pwc.levels)
        p.append(el("tr", { "data-level": String(l.level) }, el("td", {}, "L" + l.level),
                    el("td", {}, String(l.count)), el("td", {}, String(l.hits))));
      d.append(p);
    }
    box.append(d);
  }
}

/* The page-table tree of each process, entries grouped under the table that holds them. */
function renderProcs(s) {
  const box = $("procs");
  box.replaceChildren();
  const lit = litEntries();
  for (const p of s.procs) {
    const d = el("details", { class: "proc", open: p.alive, "data-pid": String(p.pid) });
    d.append(el("summary", {}, p.name + " — pid " + p.pid + (p.alive ? ", core " + p.core +
                ", PCID " + p.pcid + ", " + p.rss + " resident pages" : " (not running)")));
    if (!p.alive) { box.append(d); continue; }
    d.append(el("div", { class: "meta" }, p.format + ", root table " + p.root + " (" +
                (p.entries.length) + " entries in use" + (p.truncated ? ", listing cut" : "") + ")"));
    d.append(el("pre", { class: "maps" }, p.maps));
    const byTable = new Map();
    for (const e of p.entries) {
      if (!byTable.has(e.table)) byTable.set(e.table, []);
      byTable.get(e.table).push(e);
    }
    d.append(tableNode(p, byTable, p.root, p.levels, lit, null, true));
    box.append(d);
  }
}

/* Which tables are drawn open: the user's choice (a <details> toggled), else open when
 * "Expand all" is on, the table is on the lit walk path, or it holds few entries. A closed
 * table's entries are drawn only when it is opened, so a 12 MiB touch (3072 entries)
 * does not rebuild thousands of rows at every step. */
const userOpen = new Map(); /* "pid table" -> bool */
let expandAll = false;

function isOpen(p, table, entries, lit) {
  const k = p.pid + " " + table;
  if (userOpen.has(k)) return userOpen.get(k);
  return expandAll || entries.length <= 16 ||
         entries.some((e) => lit.has(e.ptep) || written().has(e.ptep));
}

/* A foldable box around the table at `table` (level `level`), filled when opened. */
function foldable(p, byTable, table, level, lit, label, cls) {
  const entries = byTable.get(table) || [];
  const open = isOpen(p, table, entries, lit);
  const n = (pred) => entries.filter(pred).length;
  const d = el("details", { class: cls, "data-table": table },
               el("summary", {}, label + ": " + entries.length + " entr" +
                  (entries.length === 1 ? "y" : "ies") + summaryCounts(entries, n)));
  let filled = false;
  const fill = () => {
    if (filled) return;
    filled = true;
    d.append(tableNode(p, byTable, table, level, lit, entries));
  };
  if (open) {
    d.open = true;
    fill();
  }
  d.addEventListener("toggle", () => {
    userOpen.set(p.pid + " " + table, d.open);
    if (d.open) fill();
  });
  return d;
}

function summaryCounts(entries, n) {
  const parts = [];
  const sw = n((e) => e.swap_slot !== undefined), sh = n((e) => e.leaf && e.mapcount > 1);
  const lit = n((e) => litEntries().has(e.ptep));
  const wr = n((e) => written().has(e.ptep));
  if (wr) parts.push(wr + " written");
  if (sw) parts.push(sw + " swapped");
  if (sh) parts.push(sh + " shared");
  if (lit) parts.push("on the walk");
  return parts.length ? " (" + parts.join(", ") + ")" : "";
}

function pteItem(p, e, name, lit) {
  const li = el("li", { class: "pte", "data-ptep": e.ptep, "data-pte": e.pte,
                        "data-level": String(e.level), "data-va": e.va });
  if (e.swap_slot !== undefined) li.dataset.slot = String(e.swap_slot);
  if (e.leaf && e.present) li.dataset.pa = e.pa;
  if (lit.has(e.ptep)) li.classList.add("hot");
  if (written().has(e.ptep)) li.classList.add("written");
  let target = "";
  if (!e.present) target = e.swap_slot !== undefined ? " → swap slot " + e.swap_slot : " → not present";
  else if (e.leaf) target = " → page " + e.pa;
  else target = " → table " + e.pa;
  const row = el("span", { class: "row" },
    el("span", { class: "lvl" }, name + "[" + e.index + "]"),
    el("span", { class: "addr" }, "@" + e.ptep),
    el("span", { class: "val" }, e.pte),
    el("span", { class: "bits" }, e.bits),
    el("span", { class: "tgt" }, target),
    el("span", { class: "va" }, " va " + e.va));
  const set = setBits().get(e.ptep);
  if (set) row.append(el("span", { class: "adset" }, " walker set " + adNames(p, set)));
  li.append(row);
  if (e.leaf && e.present) {
    if (e.zero) li.classList.add("zero");
    if (e.mapcount > 1) {
      li.classList.add("shared");
      row.append(el("span", { class: "share" }, " shared ×" + e.mapcount +
                    (e.writable ? "" : " (read-only: COW)")));
    }
  }
  if (e.swap_slot !== undefined) li.classList.add("swapped");
  return li;
}

/* The entries of one table; each next-level table in a foldable box. The kernel's half
 * of an x86-64 root (index 256 and up) is folded away as a whole. */
function tableNode(p, byTable, table, level, lit, entries, top) {
  const name = p.level_names[level - 1];
  const ul = el("ul", { class: "pt", "data-table": table });
  const kernel = [];
  for (const e of entries || byTable.get(table) || []) {
    if (top && e.index >= 256 && p.level_names[0] === "PT") {
      kernel.push(e);
      continue;
    }
    const li = pteItem(p, e, name, lit);
    if (e.present && !e.leaf && level > 1)
      li.append(foldable(p, byTable, e.pa, level - 1, lit, p.level_names[level - 2] + " table " +
                         e.pa, "tbl"));
    ul.append(li);
  }
  if (kernel.length) {
    const kb = el("details", { class: "kernel-half" },
                  el("summary", {}, "kernel half (shared by every process): " + kernel.length +
                     " root entries"));
    let filled = false;
    const key = p.pid + " kernel";
    const fillKernel = () => {
      if (!kb.open || filled) return;
      filled = true;
      const kul = el("ul", { class: "pt" });
      for (const e of kernel) {
        const li = pteItem(p, e, name, lit);
        if (e.present && !e.leaf && level > 1)
          li.append(foldable(p, byTable, e.pa, level - 1, lit, p.level_names[level - 2] +
                             " table " + e.pa, "tbl"));
        kul.append(li);
      }
      kb.append(kul);
    };
    kb.open = userOpen.get(key) === true;
    fillKernel();
    kb.addEventListener("toggle", () => {
      userOpen.set(key, kb.open);
      fillKernel();
    });
    ul.append(el("li", {}, kb));
  }
  return ul;
}

/* Frames mapped by more than one process (or twice): the copy-on-write story. */
function renderSharing(s) {
  const frames = new Map();
  for (const p of s.procs) {
    if (!p.alive) continue;
    for (const e of p.entries) {
      /* user pages only: the kernel half is mapped by every process's root table */
      if (!e.leaf || !e.present || e.mapcount < 2 || hexBig(e.va) >= (1n << 63n)) continue;
      if (!frames.has(e.pa)) frames.set(e.pa, { e, users: [] });
      frames.get(e.pa).users.push(p.name + " " + e.va + (e.writable ? " rw" : " r"));
    }
  }
  const box = $("sharing");
  if (!frames.size) {
    box.replaceChildren(el("p", { class: "none" }, "no frame is shared"));
    return;
  }
  const t = el("table", { class: "sharing" });
  t.append(el("tr", {}, el("th", {}, "frame"), el("th", {}, "maps"), el("th", {}, "mapped by")));
  for (const [pa, f] of frames)
    t.append(el("tr", { class: "shared-frame", "data-pa": pa },
                el("td", {}, pa + (f.e.zero ? " (zero page)" : "")),
                el("td", {}, String(f.e.mapcount)), el("td", {}, f.users.join("; "))));
  box.replaceChildren(t);
}

function renderSwap(s) {
  const box = $("swap");
  const slots = [];
  for (const p of s.procs)
    if (p.alive)
      for (const e of p.entries)
        if (e.swap_slot !== undefined) slots.push([e.swap_slot, p.name, e.va]);
  slots.sort((a, b) => a[0] - b[0]);
  const head = el("p", { id: "swap-summary" }, s.swap.total
    ? (s.swap.total - s.swap.free) + " of " + s.swap.total + " slots in use; " + s.swap.writes +
      " pages written, " + s.swap.reads + " read back"
    : "no swap device");
  const list = el("ul", { class: "slots" }, ...slots.slice(0, 64).map(([n, who, va]) =>
    el("li", { class: "slot", "data-slot": String(n) }, "slot " + n + ": " + who + " " + va)));
  if (slots.length > 64) list.append(el("li", {}, "… and " + (slots.length - 64) + " more"));
  box.replaceChildren(head, list);
}

/* ---- explain ---- */

function explain(proc, va, kind) {
  if (!loaded) return;
  $("ex-va").value = va;
  $("ex-kind").value = kind;
  if ([...$("ex-proc").options].some((o) => o.value === proc)) $("ex-proc").value = proc;
  const r = call("vw_explain", ["string", "string", "string", "number"], [proc, va, kind, 0]);
  $("explain-out").textContent = r.ok ? r.text : r.error;
  $("explain-out").className = r.ok ? "" : "error";
}

/* ---- start ---- */

function setup() {
  const ex = $("example");
  for (const name of Object.keys(VMSIM_EXAMPLES))
    ex.append(el("option", { value: name }, name));
  const pre = $("preset");
  pre.append(el("option", { value: "" }, "(default)"));
  for (const name of call("vw_presets", [], [])) pre.append(el("option", { value: name }, name));
  $("commands").textContent = call("vw_commands", [], []).join("\n");
  ex.addEventListener("change", () => {
    $("scenario").value = VMSIM_EXAMPLES[ex.value];
    loaded = false;
  });
  $("scenario").addEventListener("input", () => { loaded = false; });
  $("preset").addEventListener("change", () => { loaded = false; });
  $("load").addEventListener("click", load);
  $("step").addEventListener("click", () => stepOnce(true));
  $("play").addEventListener("click", play);
  $("end").addEventListener("click", runToEnd);
  $("expand-all").addEventListener("change", () => {
    expandAll = $("expand-all").checked;
    userOpen.clear();
    if (loaded) render();
  });
  $("ex-go").addEventListener("click", () =>
    explain($("ex-proc").value, $("ex-va").value, $("ex-kind").value));

  const { q, scn } = params();
  const name = q.get("example");
  ex.value = name && VMSIM_EXAMPLES[name] !== undefined ? name : "demo";
  $("scenario").value = scn !== null ? scn : VMSIM_EXAMPLES[ex.value];
  if (q.get("preset")) pre.value = q.get("preset");
  setStatus("ready: press Load or Step", "ok");
  const want = q.get("steps");
  if (want !== null && load()) {
    const n = want === "all" ? Infinity : parseInt(want, 10);
    for (let i = 0; i < n && stepOnce(false); i++);
    render();
    const x = q.get("explain");
    if (x) {
      const [p, va, kind] = x.split(",");
      explain(p, va, kind || "read");
    }
  }
  document.body.dataset.state = "done";
}

VmsimModule().then((m) => {
  vm = m;
  setup();
}, (e) => setStatus("the simulator failed to start: " + e, "error"));
