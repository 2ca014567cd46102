"""A PEP 517 build backend for the vmsim package that needs nothing from a package index.

pip runs it for `pip install ./python`. It writes the wheel itself (a zip with the
package, a copy of libvmsim.so and the .dist-info metadata, PEP 427). The shared library
is, in order: $VMSIM_LIBRARY; libvmsim.so from a build of the checkout (build/release,
then any build/*/); else it is built with CMake into build/python (release, only the
vmsim_shared target). The version is the project's, from ../CMakeLists.txt.

There is no build_sdist: the package is built from a checkout (it needs the C sources
next to it), which is how pip treats a local directory.
"""
import base64
import glob
import hashlib
import os
import re
import subprocess
import sysconfig
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _version():
    text = open(os.path.join(ROOT, "CMakeLists.txt")).read()
    return re.search(r"project\(vmsim VERSION ([0-9.]+)", text).group(1)


def _library():
    env = os.environ.get("VMSIM_LIBRARY")
    if env:
        return env
    for pattern in ("build/release/libvmsim.so", "build/*/libvmsim.so"):
        found = sorted(glob.glob(os.path.join(ROOT, pattern)))
        if found:
            return os.path.realpath(found[0])
    out = os.path.join(ROOT, "build", "python")
    subprocess.check_call(["cmake", "-S", ROOT, "-B", out, "-G", "Ninja",
                           "-DCMAKE_BUILD_TYPE=Release"])
    subprocess.check_call(["cmake", "--build", out, "--target", "vmsim_shared"])
    return os.path.realpath(os.path.join(out, "libvmsim.so"))


def _metadata(version):
    return ("Metadata-Version: 2.1\nName: vmsim\nVersion: %s\n"
            "Summary: Python bindings for vmsim, a full-system virtual-memory simulator\n"
            "Requires-Python: >=3.9\n" % version)


def _tag():
    plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    return "py3-none-" + plat


def get_requires_for_build_wheel(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    version = _version()
    info = "vmsim-%s.dist-info" % version
    os.makedirs(os.path.join(metadata_directory, info), exist_ok=True)
    with open(os.path.join(metadata_directory, info, "METADATA"), "w") as f:
        f.write(_metadata(version))
    return info


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    version, tag = _version(), _tag()
    info = "vmsim-%s.dist-info" % version
    name = "vmsim-%s-%s.whl" % (version, tag)
    files = {}
    for path in sorted(glob.glob(os.path.join(HERE, "vmsim", "*.py"))):
        files["vmsim/" + os.path.basename(path)] = open(path, "rb").read()
    files["vmsim/libvmsim.so"] = open(_library(), "rb").read()
    files[info + "/METADATA"] = _metadata(version).encode()
    files[info + "/WHEEL"] = ("Wheel-Version: 1.0\nGenerator: vmsim_build\n"
                              "Root-Is-Purelib: false\nTag: %s\n" % tag).encode()
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
        record.append("%s,sha256=%s,%d" % (path, digest.decode(), len(data)))
    record.append(info + "/RECORD,,")
    files[info + "/RECORD"] = ("\n".join(record) + "\n").encode()
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w", zipfile.ZIP_DEFLATED) as z:
        for path, data in files.items():
            zi = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
            zi.external_attr = (0o755 if path.endswith(".so") else 0o644) << 16
            z.writestr(zi, data, zipfile.ZIP_DEFLATED)
    return name
