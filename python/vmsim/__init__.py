"""vmsim from Python: ctypes over libvmsim.so, the same library the vmsim CLI is built on.

    import vmsim
    cfg = vmsim.Config(preset="skylake", cores=1, **{"tlb.l1d": "4K:8x4:lru"})
    r = vmsim.replay("examples/traces/ls.vmt", cfg)       # a dict, like --stats json
    r["tlb"]["l1d"]["misses"]

    k = vmsim.Kernel(cfg)                                  # boots a machine and a kernel
    p = k.spawn("demo")
    va = p.mmap(8192)                                      # anonymous, read-write
    p.write(va, b"hello")                                  # page fault, zero-fill, TLB fill
    p.read(va, 5)                                          # b"hello"
    k.stats()["faults"]                                    # {"total": 1, ...}

    vmsim.Scenario(path="examples/scenarios/demo.scn").run()  # {"result": …, "stats": …}

Every result is a dict (the JSON objects the CLI prints; docs/PYTHON.md). Library
errors raise vmsim.Error with the library's message. The shared library is found in
$VMSIM_LIBRARY, next to this file (pip install ./python bundles it), or on the system
(make install).
"""
import ctypes
import ctypes.util
import json
import os
import shutil
import tempfile

__all__ = ["Error", "Config", "Machine", "Kernel", "Process", "Scenario", "replay",
           "version", "library_path"]


class Error(Exception):
    """A library error: bad input, a configuration it cannot build, an unreadable file."""


def _find_library():
    env = os.environ.get("VMSIM_LIBRARY")
    if env:
        return env
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "libvmsim.so")
    if os.path.exists(here):
        return here
    found = ctypes.util.find_library("vmsim")
    if found:
        return found
    raise ImportError("vmsim: libvmsim.so not found (set VMSIM_LIBRARY, pip install ./python "
                      "from the checkout, or make install)")


library_path = _find_library()
_lib = ctypes.CDLL(library_path)

_p = ctypes.c_void_p
_u64 = ctypes.c_uint64


class _Err(ctypes.Structure):
    _fields_ = [("status", ctypes.c_int), ("msg", ctypes.c_char * 256)]


class _Strbuf(ctypes.Structure):
    _fields_ = [("data", ctypes.c_char_p), ("len", ctypes.c_size_t), ("cap", ctypes.c_size_t),
                ("alloc", _p), ("failed", ctypes.c_int)]


class _ScenarioResult(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint) for n in
                ("commands", "expects_passed", "expects_failed", "unexpected_faults", "errors")]


class _AccessInfo(ctypes.Structure):
    _fields_ = [("outcome", ctypes.c_int), ("addr", _u64), ("error_code", ctypes.c_uint32),
                ("si_code", ctypes.c_int), ("faults", ctypes.c_uint), ("major", ctypes.c_uint)]


_SCENARIO_OUT = ctypes.CFUNCTYPE(None, _p, ctypes.c_bool, ctypes.c_char_p)


class _ReplayOpts(ctypes.Structure):
    _fields_ = [("layout", ctypes.c_int), ("slow", ctypes.c_bool), ("breakdown", ctypes.c_bool),
                ("limit", _u64),
                ("interval", _u64), ("tick", _p), ("log", _p), ("ud", _p),
                ("oracle", _p)]  # vms_replay_opts (include/vmsim/replay.h), in order


def _sig(name, restype, *argtypes):
    f = getattr(_lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


_E = ctypes.POINTER(_Err)
_SB = ctypes.POINTER(_Strbuf)
_s = ctypes.c_char_p
_int = ctypes.c_int
_sig("vms_version", _s)
_sig("vms_version_build", _s)
_sig("vms_config_size", ctypes.c_size_t)
_sig("vms_config_init", _int, _p, _s, _E)
_sig("vms_config_set", _int, _p, _s, _s, _s, _E)
_sig("vms_config_load", _int, _p, _s, _E)
_sig("vms_config_json", _int, _p, _SB)
_sig("vms_config_dump", _int, _p, _SB)
_sig("vms_config_boot", _int, _p, ctypes.POINTER(_p), ctypes.POINTER(_p), _E)
_sig("vms_strbuf_init", None, _SB, _p)
_sig("vms_strbuf_free", None, _SB)
_sig("vms_strbuf_append", _int, _SB, _s, ctypes.c_size_t)
_sig("vms_machine_destroy", None, _p)
_sig("vms_machine_stats_json_members", _int, _p, _SB)
_sig("vms_kernel_destroy", None, _p)
_sig("vms_kernel_stats_json_members", _int, _p, _SB)
_sig("vms_kernel_meminfo", _int, _p, _SB)
_sig("vms_proc_spawn", _int, _p, _s, ctypes.c_uint, ctypes.POINTER(_p), _E)
_sig("vms_proc_fork", _int, _p, _p, ctypes.POINTER(_p), _E)
_sig("vms_proc_exit", None, _p, _p)
_sig("vms_proc_access", _int, _p, _p, _u64, _int, _p, ctypes.c_size_t,
     ctypes.POINTER(_AccessInfo), _E)
_sig("vms_proc_maps", _int, _p, _p, _SB)
_sig("vms_proc_rss", _u64, _p, _p)
_sig("vms_sys_mmap", _int, _p, _p, _u64, _u64, ctypes.c_uint, ctypes.c_uint, _p, _u64,
     ctypes.POINTER(_u64), _E)
_sig("vms_sys_munmap", _int, _p, _p, _u64, _u64, _E)
_sig("vms_sys_mprotect", _int, _p, _p, _u64, _u64, ctypes.c_uint, _E)
_sig("vms_scenario_parse", _int, _p, _s, _s, ctypes.POINTER(_p), _E)
_sig("vms_scenario_configure", _int, _p, _p, _E)
_sig("vms_scenario_run", _int, _p, _p, _SCENARIO_OUT, _p, ctypes.POINTER(_ScenarioResult), _E)
_sig("vms_scenario_destroy", None, _p)
_sig("vms_trace_format_parse", _int, _s, ctypes.POINTER(_int), _E)
_sig("vms_trace_reader_open", _int, _s, _int, _p, ctypes.POINTER(_p), _E)
_sig("vms_trace_reader_close", None, _p)
_sig("vms_replay_layout_parse", _int, _s, ctypes.POINTER(_int), _E)
_sig("vms_replay_create", _int, _p, ctypes.POINTER(_ReplayOpts), ctypes.POINTER(_p), _E)
_sig("vms_replay_run", _int, _p, _p, _E)
_sig("vms_replay_destroy", None, _p)
_sig("vms_replay_stats_json_members", _int, _p, _SB)

# mman.h and common.h constants
PROT_READ, PROT_WRITE, PROT_EXEC = 0x1, 0x2, 0x4
MAP_SHARED, MAP_PRIVATE, MAP_FIXED, MAP_ANONYMOUS = 0x01, 0x02, 0x10, 0x20
_KINDS = {"read": 0, "write": 1, "exec": 2}
_OUTCOMES = ["ok", "segv", "bus", "oom", "dead", "efault"]


def version():
    """"X.Y.Z", and the git description of the build ("" when none)."""
    return _lib.vms_version().decode(), _lib.vms_version_build().decode()


def _check(status, err):
    if status != 0:
        raise Error(err.msg.decode(errors="replace"))


def _text(fill, *args):
    """Call fill(*args, strbuf) and return the text it appended."""
    sb = _Strbuf()
    _lib.vms_strbuf_init(ctypes.byref(sb), None)
    try:
        fill(*args, ctypes.byref(sb))
        return ctypes.string_at(sb.data, sb.len).decode() if sb.len else ""
    finally:
        _lib.vms_strbuf_free(ctypes.byref(sb))


def _members(*fills):
    """A dict from JSON-members functions [(fn, handle), …] (each appends "name": value)."""
    sb = _Strbuf()
    _lib.vms_strbuf_init(ctypes.byref(sb), None)
    try:
        _lib.vms_strbuf_append(ctypes.byref(sb), b"{", 1)
        for fn, h in fills:
            fn(h, ctypes.byref(sb))
        _lib.vms_strbuf_append(ctypes.byref(sb), b"}", 1)
        return json.loads(ctypes.string_at(sb.data, sb.len).decode())
    finally:
        _lib.vms_strbuf_free(ctypes.byref(sb))


class Config:
    """A full configuration (vmsim config): a preset, then a config file, then keys.

    Config(preset="tiny", file="my.ini", ram="16M", **{"tlb.l1d": "4K:8x4:lru"})
    Keys with dots are passed as **{"a.b": v} or with set(). dict() is the configuration
    as `vmsim config` prints it.
    """

    def __init__(self, preset=None, file=None, **keys):
        self._buf = ctypes.create_string_buffer(_lib.vms_config_size())
        err = _Err()
        _check(_lib.vms_config_init(self._buf, preset.encode() if preset else None,
                                    ctypes.byref(err)), err)
        if file:
            self.load(file)
        for k, v in keys.items():
            self.set(k, v)

    def set(self, key, value):
        """Set one key (as --set KEY=VALUE); returns self."""
        if isinstance(value, bool):
            value = "on" if value else "off"
        err = _Err()
        _check(_lib.vms_config_set(self._buf, key.encode(), str(value).encode(), b"python",
                                   ctypes.byref(err)), err)
        return self

    def load(self, path):
        """Load an INI file (as --config FILE); returns self."""
        err = _Err()
        _check(_lib.vms_config_load(self._buf, os.fsencode(path), ctypes.byref(err)), err)
        return self

    def dict(self):
        """Every key and its value, as strings (the "config" object of every result)."""
        return json.loads(_text(_lib.vms_config_json, self._buf))

    def ini(self):
        """The configuration as a loadable INI text (vmsim config)."""
        return _text(_lib.vms_config_dump, self._buf)

    def copy(self):
        c = Config.__new__(Config)
        c._buf = ctypes.create_string_buffer(self._buf.raw, len(self._buf))
        return c


class Machine:
    """The hardware: RAM, cores, TLBs, page-walk caches. Made by Kernel (a machine is
    always booted with its kernel here); stats() is the machine's counters."""

    def __init__(self, handle, owner):
        self._h, self._owner = handle, owner

    def stats(self):
        return _members((_lib.vms_machine_stats_json_members, self._h))


class Kernel:
    """A booted machine and kernel from a Config (default: the skylake preset)."""

    def __init__(self, config=None):
        self.config = (config or Config()).copy()  # the kernel keeps pointers into it
        m, k, err = _p(), _p(), _Err()
        _check(_lib.vms_config_boot(self.config._buf, ctypes.byref(m), ctypes.byref(k),
                                    ctypes.byref(err)), err)
        self._m, self._k = m, k
        self.machine = Machine(m, self)

    def close(self):
        """Free the kernel and machine (also done when the object is collected)."""
        if getattr(self, "_k", None):
            _lib.vms_kernel_destroy(self._k)
            _lib.vms_machine_destroy(self._m)
            self._k = self._m = None

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def stats(self):
        """Machine and kernel counters in one dict, as --stats json prints them."""
        return _members((_lib.vms_machine_stats_json_members, self._m),
                        (_lib.vms_kernel_stats_json_members, self._k))

    def meminfo(self):
        return _text(_lib.vms_kernel_meminfo, self._k)

    def spawn(self, name, core=0):
        """A new process with an empty address space on `core`."""
        t, err = _p(), _Err()
        _check(_lib.vms_proc_spawn(self._k, name.encode(), core, ctypes.byref(t),
                                   ctypes.byref(err)), err)
        return Process(self, t)


class Process:
    """A simulated process (its first task). Accesses go through its core's MMU."""

    def __init__(self, kernel, task):
        self.kernel, self._t = kernel, task

    def mmap(self, length, prot=PROT_READ | PROT_WRITE, flags=MAP_PRIVATE | MAP_ANONYMOUS,
             addr=0):
        """mmap(2), anonymous by default; returns the address."""
        out, err = _u64(), _Err()
        _check(_lib.vms_sys_mmap(self.kernel._k, self._t, addr, length, prot, flags, None, 0,
                                 ctypes.byref(out), ctypes.byref(err)), err)
        return out.value

    def munmap(self, addr, length):
        err = _Err()
        _check(_lib.vms_sys_munmap(self.kernel._k, self._t, addr, length, ctypes.byref(err)), err)

    def mprotect(self, addr, length, prot):
        err = _Err()
        _check(_lib.vms_sys_mprotect(self.kernel._k, self._t, addr, length, prot,
                                     ctypes.byref(err)), err)

    def access(self, va, kind="read", data=None, length=None):
        """One user access; returns (bytes or None, info dict: outcome, faults, major,
        addr, error_code). kind is read, write or exec; a write takes data."""
        if kind == "write":
            buf = ctypes.create_string_buffer(bytes(data), len(data))
            length = len(data)
        else:
            length = length or 1
            buf = ctypes.create_string_buffer(length)
        info, err = _AccessInfo(), _Err()
        _check(_lib.vms_proc_access(self.kernel._k, self._t, va, _KINDS[kind], buf, length,
                                    ctypes.byref(info), ctypes.byref(err)), err)
        out = {"outcome": _OUTCOMES[info.outcome], "faults": info.faults, "major": info.major,
               "addr": info.addr, "error_code": info.error_code}
        return (buf.raw[:length] if kind != "write" else None), out

    def read(self, va, length):
        """Read bytes; raises Error if the access killed the process."""
        data, info = self.access(va, "read", length=length)
        if info["outcome"] != "ok":
            raise Error("read 0x%x: %s" % (va, info["outcome"]))
        return data

    def write(self, va, data):
        """Write bytes; raises Error if the access killed the process."""
        _, info = self.access(va, "write", data=data)
        if info["outcome"] != "ok":
            raise Error("write 0x%x: %s" % (va, info["outcome"]))
        return info

    def fork(self):
        child, err = _p(), _Err()
        _check(_lib.vms_proc_fork(self.kernel._k, self._t, ctypes.byref(child),
                                  ctypes.byref(err)), err)
        return Process(self.kernel, child)

    def exit(self):
        _lib.vms_proc_exit(self.kernel._k, self._t)

    def maps(self):
        """/proc/PID/maps text."""
        return _text(lambda sb: _lib.vms_proc_maps(self.kernel._k, self._t, sb))

    def rss(self):
        return _lib.vms_proc_rss(self.kernel._k, self._t)


class Scenario:
    """A scenario (docs/SCENARIO.md) from a file or text."""

    def __init__(self, path=None, text=None, name=None):
        if (path is None) == (text is None):
            raise ValueError("Scenario: give path or text")
        if path is not None:
            with open(path) as f:
                text = f.read()
            name = name or path
        self._h, err = _p(), _Err()
        _check(_lib.vms_scenario_parse(None, (name or "python.scn").encode(), text.encode(),
                                       ctypes.byref(self._h), ctypes.byref(err)), err)

    def __del__(self):
        if getattr(self, "_h", None):
            _lib.vms_scenario_destroy(self._h)
            self._h = None

    def run(self, config=None):
        """Run on a fresh machine: config, then the scenario's own `set` lines. Returns
        {"result": {commands, expects_passed, …}, "stats": {…}, "config": {…},
        "narration": text, "errors": text}."""
        cfg = (config or Config()).copy()
        err = _Err()
        _check(_lib.vms_scenario_configure(self._h, cfg._buf, ctypes.byref(err)), err)
        out, errs = [], []

        def emit(_ud, is_error, text):
            (errs if is_error else out).append(text.decode(errors="replace"))

        cb = _SCENARIO_OUT(emit)
        res = _ScenarioResult()
        with Kernel(cfg) as k:
            _check(_lib.vms_scenario_run(self._h, k._k, cb, None, ctypes.byref(res),
                                         ctypes.byref(err)), err)
            stats = k.stats()
        return {"result": {n: getattr(res, n) for n, _ in _ScenarioResult._fields_},
                "stats": stats, "config": cfg.dict(), "narration": "".join(out),
                "errors": "".join(errs)}


def replay(trace, config=None, format="auto", layout=None, limit=0, slow=False, breakdown=False):
    """Replay a trace file (docs/REPLAY.md) on a fresh machine; returns the dict that
    `vmsim replay --stats json` prints (version, config, machine, kernel and replay
    counters; "input" names the trace). breakdown=True adds replay.by_region (by mapping)
    as --breakdown does; replay.by_process is always there."""
    cfg = (config or Config()).copy()
    as_configured = cfg.dict()
    tmp = None
    if not as_configured.get("kernel.writeback_dir"):
        tmp = tempfile.mkdtemp(prefix="vmsim-replay-")  # never litter the current directory
        cfg.set("kernel.writeback_dir", tmp)
    err, fmt, lay = _Err(), _int(0), _int(0)
    _check(_lib.vms_trace_format_parse(("dinero" if format == "din" else format).encode(),
                                       ctypes.byref(fmt), ctypes.byref(err)), err)
    if layout:
        _check(_lib.vms_replay_layout_parse(layout.encode(), ctypes.byref(lay),
                                            ctypes.byref(err)), err)
    rd, r = _p(), _p()
    try:
        with Kernel(cfg) as k:
            try:
                _check(_lib.vms_trace_reader_open(os.fsencode(trace), fmt.value, None,
                                                  ctypes.byref(rd), ctypes.byref(err)), err)
                opts = _ReplayOpts(layout=lay.value, slow=slow, breakdown=breakdown, limit=limit)
                _check(_lib.vms_replay_create(k._k, ctypes.byref(opts), ctypes.byref(r),
                                              ctypes.byref(err)), err)
                _check(_lib.vms_replay_run(r, rd, ctypes.byref(err)), err)
                d = _members((_lib.vms_machine_stats_json_members, k._m),
                             (_lib.vms_kernel_stats_json_members, k._k),
                             (_lib.vms_replay_stats_json_members, r))
            finally:  # the replay borrows the kernel: freed first
                if r:
                    _lib.vms_replay_destroy(r)
                if rd:
                    _lib.vms_trace_reader_close(rd)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    v, b = version()
    head = {"version": v, "build": b, "config": as_configured,
            "input": {"kind": "trace", "name": str(trace), "sha256": _sha256(trace)},
            "seed": int(as_configured["seed"])}
    head.update(d)
    return head


def _sha256(path):
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()
