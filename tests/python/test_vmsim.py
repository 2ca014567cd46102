#!/usr/bin/env python3
"""test_vmsim.py — the Python package (python/vmsim) against the CLI it must agree with.

Prints its seed first ("python: seed N"; VMS_TEST_SEED=N replays) and ends with
"python: N passed, N failed", like the C test binaries. Needs VMSIM_LIBRARY (the built
libvmsim.so), VMSIM_CLI (the vmsim program) and VMS_SOURCE_DIR (ctest sets them).
"""
import json
import os
import random
import subprocess
import sys
import unittest

src = os.environ.get("VMS_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(src, "python"))
import vmsim  # noqa: E402

CLI = os.environ["VMSIM_CLI"]
SEED = int(os.environ.get("VMS_TEST_SEED", random.SystemRandom().randrange(1 << 32)))
TRACES = os.path.join(src, "examples", "traces")


def cli(*args):
    r = subprocess.run([CLI] + list(args), capture_output=True, text=True, cwd=src)
    assert r.returncode == 0, (args, r.stderr)
    return r.stdout


def cli_json(*args):
    return json.loads(cli(*args))


class Version(unittest.TestCase):
    def test_same_as_cli(self):
        v, build = vmsim.version()
        self.assertEqual(cli("--version").split()[1], v)
        self.assertRegex(v, r"^\d+\.\d+\.\d+$")


class Config(unittest.TestCase):
    def test_dict_is_vmsim_config(self):
        c = vmsim.Config(preset="tiny", ram="16M", **{"tlb.l1d": "4K:8x4:lru"})
        ini = cli("config", "--preset", "tiny", "--set", "ram=16M", "--set", "tlb.l1d=4K:8x4:lru")
        self.assertEqual(c.ini(), ini)
        d = c.dict()
        self.assertEqual(d["ram"], "16M")
        self.assertEqual(d["tlb.l1d"], "4K:8x4:lru")
        self.assertEqual(len(d), len([l for l in ini.splitlines() if not l.startswith("#")]))

    def test_errors(self):
        with self.assertRaisesRegex(vmsim.Error, "nosuchkey"):
            vmsim.Config(nosuchkey=1)
        with self.assertRaisesRegex(vmsim.Error, "cores"):
            vmsim.Config(cores="many")
        with self.assertRaisesRegex(vmsim.Error, "nosuch"):
            vmsim.Config(preset="nosuch")


class Replay(unittest.TestCase):
    def test_equals_cli_json(self):
        for trace, sets in (("small.vmt", {}), ("ls.vmt", {"cores": "1", "tlb.l1d": "4K:4x4:lru"}),
                            ("true-all.lackey.xz", {"preset": "tiny"})):
            path = os.path.join("examples", "traces", trace)
            cfg = vmsim.Config(preset=sets.get("preset"),
                               **{k: v for k, v in sets.items() if k != "preset"})
            args = ["replay", path, "--stats", "json"]
            if "preset" in sets:
                args += ["--preset", sets["preset"]]
            for k, v in sets.items():
                if k != "preset":
                    args += ["--set", "%s=%s" % (k, v)]
            cwd = os.getcwd()
            os.chdir(src)
            try:
                got = vmsim.replay(path, cfg)
            finally:
                os.chdir(cwd)
            self.assertEqual(got, cli_json(*args), trace)

    def test_slow_limit_deterministic(self):
        t = os.path.join(TRACES, "ls.vmt")
        a = vmsim.replay(t, limit=20000)
        self.assertEqual(a["replay"]["references"], 20000)
        self.assertEqual(a, vmsim.replay(t, limit=20000, slow=True))

    def test_errors(self):
        with self.assertRaisesRegex(vmsim.Error, "/nonexistent.vmt"):
            vmsim.replay("/nonexistent.vmt")
        with self.assertRaises(vmsim.Error):
            vmsim.replay(os.path.join(TRACES, "ls.vmt"), format="nosuchformat")


class Scenario(unittest.TestCase):
    def test_equals_cli(self):
        for name in ("demo", "swap", "segv"):
            path = os.path.join(src, "examples", "scenarios", name + ".scn")
            r = vmsim.Scenario(path=path).run()
            c = cli_json("run", path, "--stats", "json")
            self.assertEqual(r["result"], c["scenario"], name)
            self.assertEqual(r["config"], c["config"], name)
            for k, v in r["stats"].items():
                self.assertEqual(v, c[k], (name, k))
            if name == "demo":
                self.assertIn("fork", r["narration"])

    def test_text_and_errors(self):
        r = vmsim.Scenario(text="spawn p\nmmap p auto 8K rw as h\nwrite p h \"hi\"\n"
                                "read p h 2 expect \"hi\"\nread p h 2 expect \"no\"\n").run()
        self.assertEqual(r["result"]["expects_passed"], 1, r)
        self.assertEqual(r["result"]["expects_failed"], 1, r)
        self.assertEqual(r["stats"]["faults"]["total"], 1, r)
        with self.assertRaisesRegex(vmsim.Error, "bad.scn:1"):
            vmsim.Scenario(text="frobnicate\n", name="bad.scn")


class Kernel(unittest.TestCase):
    def test_bytes_round_trip(self):
        rng = random.Random(SEED)
        with vmsim.Kernel(vmsim.Config(preset="tiny")) as k:
            p = k.spawn("p")
            n = 16
            va = p.mmap(n * 4096)
            want = {}
            for _ in range(200):
                off = rng.randrange(n * 4096 - 64)
                data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
                p.write(va + off, data)
                for i, b in enumerate(data):
                    want[off + i] = b
            for off, b in want.items():
                self.assertEqual(p.read(va + off, 1)[0], b)
            touched = len({off // 4096 for off in want})
            self.assertEqual(k.stats()["faults"]["total"], touched)
            self.assertEqual(p.rss(), touched)  # in pages

    def test_cow_and_segv(self):
        with vmsim.Kernel() as k:
            p = k.spawn("p")
            va = p.mmap(4096)
            p.write(va, b"parent")
            c = p.fork()
            c.write(va, b"child!")
            self.assertEqual(p.read(va, 6), b"parent")
            self.assertEqual(c.read(va, 6), b"child!")
            self.assertEqual(k.stats()["faults"]["cow"], 1)
            self.assertIn("rw-p", p.maps())
            _, info = p.access(va + 8192, "read", length=1)
            self.assertEqual(info["outcome"], "segv")
            self.assertEqual(info["addr"], va + 8192)
            m = k.machine.stats()
            self.assertGreater(m["tlb"]["l1d"]["misses"], 0)
        with self.assertRaises(vmsim.Error):
            vmsim.Kernel(vmsim.Config(cores=1)).spawn("x", core=5)


if __name__ == "__main__":
    print("python: seed %d" % SEED, flush=True)
    result = unittest.main(exit=False, verbosity=0).result
    failed = len(result.failures) + len(result.errors)
    print("python: %d passed, %d failed" % (result.testsRun - failed, failed))
    sys.exit(1 if failed or not result.wasSuccessful() else 0)
