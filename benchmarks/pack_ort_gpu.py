"""Pack onnxruntime-gpu for a GPU machine that cannot download and takes 64 MiB a transfer (docs/gpu.md).

Keeps what `import onnxruntime` and the CUDA provider need (the Python package, the pybind module, the shared and
CUDA provider libraries) and, in the CUDA provider, zeroes the payload of every fatbin entry not built for
``--arch``: the headers stay, so the CUDA runtime still finds the cubins for its own chip, and the zeros compress
to nothing. CUDA and cuDNN themselves must be on that machine (e.g. PyTorch's nvidia-* wheels; LD_LIBRARY_PATH).

    python benchmarks/pack_ort_gpu.py onnxruntime_gpu-1.31.1-cp312-*.whl --arch 90 -o .ortgpu/ort.tar.xz
    # there: tar -xJf .ortgpu/ort.tar.xz -C /tmp/site && PYTHONPATH=/tmp/site python benchmarks/bench_gpu.py
"""

from __future__ import annotations

import argparse
import io
import lzma
import struct
import tarfile
import zipfile
from pathlib import Path

FATBIN_MAGIC = 0xBA55ED50
KEEP = ("onnxruntime/__init__.py", "onnxruntime/capi/")
SKIP = ("capi/libonnxruntime.so", "capi/libonnxruntime_providers_tensorrt.so")  # C API library (the pybind
# module does not load it); TensorRT's provider (no TensorRT there)


def section(elf: bytes, name: bytes) -> tuple[int, int]:
    """(file offset, size) of an ELF64 section by name."""
    shoff, = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)
    strtab_off, = struct.unpack_from("<Q", elf, shoff + shstrndx * shentsize + 0x18)
    for i in range(shnum):
        hdr = shoff + i * shentsize
        name_off, = struct.unpack_from("<I", elf, hdr)
        if elf[strtab_off + name_off:].split(b"\0", 1)[0] == name:
            return struct.unpack_from("<QQ", elf, hdr + 0x18)
    raise ValueError(f"no {name.decode()} section")


def keep_arch(lib: bytes, arch: int) -> tuple[bytes, int, int]:
    """``lib`` with every fatbin entry for another architecture zeroed; (new bytes, bytes kept, bytes zeroed)."""
    data = bytearray(lib)
    off, size = section(lib, b".nv_fatbin")
    pos, kept, zeroed = 0, 0, 0
    while pos + 16 <= size:
        magic, _, header, body = struct.unpack_from("<IHHQ", data, off + pos)
        if magic != FATBIN_MAGIC:
            pos += 8  # fatbins are 8-aligned; padding between them
            continue
        p, end = pos + header, pos + header + body
        while p < end:
            _, _, entry_header, payload = struct.unpack_from("<HHIQ", data, off + p)
            entry_arch, = struct.unpack_from("<I", data, off + p + 28)
            start = off + p + entry_header
            if entry_arch == arch:
                kept += payload
            else:
                data[start:start + payload] = bytes(payload)
                zeroed += payload
            p += entry_header + payload
        pos = end
    return bytes(data), kept, zeroed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("wheel", type=Path)
    ap.add_argument("--arch", type=int, default=90, help="SM architecture to keep (90: H100/H200, 89: Ada, 80: A100)")
    ap.add_argument("-o", "--out", type=Path, default=Path(".ortgpu/ort.tar.xz"))
    args = ap.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    filters = [{"id": lzma.FILTER_X86}, {"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME,
                                         "dict_size": 384 << 20}]
    with zipfile.ZipFile(args.wheel) as whl, lzma.open(args.out, "wb", format=lzma.FORMAT_XZ, filters=filters) as xz, \
            tarfile.open(fileobj=xz, mode="w") as tar:
        for name in whl.namelist():
            if not name.startswith(KEEP) or any(k in name for k in SKIP) or "/" in name[len("onnxruntime/capi/"):]:
                continue
            data = whl.read(name)
            if name.endswith("libonnxruntime_providers_cuda.so"):
                data, kept, zeroed = keep_arch(data, args.arch)
                print(f"{name}: kept {kept / 1e6:.1f} MB of sm_{args.arch} cubins, zeroed {zeroed / 1e6:.1f} MB")
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755 if name.endswith(".so") else 0o644
            tar.addfile(info, io.BytesIO(data))
    print(f"{args.out}: {args.out.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
