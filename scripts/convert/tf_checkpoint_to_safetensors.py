"""Converts a TensorFlow (V2 bundle) checkpoint to safetensors with the standard library only, no TensorFlow.

A bundle is `<prefix>.index`, an SSTable (LevelDB's table format) mapping each variable name to a BundleEntryProto
(dtype, shape, shard, offset, size), and `<prefix>.data-NNNNN-of-MMMMM` shards holding the raw little-endian bytes.
Optimizer slots (Adam's moments and powers) and the global step are left out: inference needs none of them.

Usage: python3 tf_checkpoint_to_safetensors.py <checkpoint prefix> model.safetensors
"""
import collections
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_legacy_to_safetensors import write_safetensors  # noqa: E402

MAGIC = 0xDB4775248B80FB57
# TensorFlow DataType enum -> (safetensors dtype, bytes per element)
DTYPES = {1: ("F32", 4), 2: ("F64", 8), 3: ("I32", 4), 9: ("I64", 8), 19: ("F16", 2), 14: ("BF16", 2)}


def varint(data, position):
    result, shift = 0, 0
    while True:
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, position
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def block(data, offset, size):
    """The entries (key, value) of the table block at offset/size; refuses compressed blocks."""
    if offset + size + 5 > len(data):
        raise ValueError("block runs past the end of the index")
    if data[offset + size] != 0:
        raise ValueError(f"compressed table block (type {data[offset + size]}) is not supported")
    contents = data[offset:offset + size]
    restarts = struct.unpack_from("<I", contents, len(contents) - 4)[0]
    end = len(contents) - 4 - 4 * restarts
    position, key, entries = 0, b"", []
    while position < end:
        shared, position = varint(contents, position)
        unshared, position = varint(contents, position)
        length, position = varint(contents, position)
        key = key[:shared] + contents[position:position + unshared]
        position += unshared
        entries.append((key, contents[position:position + length]))
        position += length
    return entries


def fields(message):
    """Protobuf wire format: field number -> list of values (varints as ints, length-delimited as bytes)."""
    out, position = collections.defaultdict(list), 0
    while position < len(message):
        tag, position = varint(message, position)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, position = varint(message, position)
        elif wire == 2:
            length, position = varint(message, position)
            value = message[position:position + length]
            position += length
        elif wire == 5:
            value = struct.unpack_from("<I", message, position)[0]
            position += 4
        elif wire == 1:
            value = struct.unpack_from("<Q", message, position)[0]
            position += 8
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        out[number].append(value)
    return out


def read_index(prefix):
    data = open(prefix + ".index", "rb").read()
    if len(data) < 48 or struct.unpack_from("<Q", data, len(data) - 8)[0] != MAGIC:
        raise ValueError(f"{prefix}.index: not a TensorFlow checkpoint index")
    footer = data[-48:]
    _, position = varint(footer, 0)            # metaindex handle: offset
    _, position = varint(footer, position)     # ... and size
    index_offset, position = varint(footer, position)
    index_size, _ = varint(footer, position)
    entries = collections.OrderedDict()
    for _, handle in block(data, index_offset, index_size):
        offset, position = varint(handle, 0)
        size, _ = varint(handle, position)
        for key, value in block(data, offset, size):
            entries[key.decode()] = value
    return entries


def read_checkpoint(prefix, keep=lambda name: "/Adam" not in name and name not in ("global_step", "beta1_power", "beta2_power")):
    entries = read_index(prefix)
    header = fields(entries.pop("", b""))
    shards = header.get(1, [1])[0]
    if header.get(2, [0])[0] != 0:
        raise ValueError(f"{prefix}: big-endian checkpoints are not supported")
    tensors = collections.OrderedDict()
    files = {}
    for name, value in sorted(entries.items()):
        if not keep(name):
            continue
        entry = fields(value)
        dtype = entry.get(1, [0])[0]
        if dtype not in DTYPES:
            raise ValueError(f"{prefix}: tensor {name} has unsupported dtype {dtype}")
        if entry.get(7):
            raise ValueError(f"{prefix}: tensor {name} is sliced")
        shape = [fields(dim).get(1, [0])[0] for dim in fields(entry[2][0]).get(2, [])] if entry.get(2) else []
        shard, offset, size = entry.get(3, [0])[0], entry.get(4, [0])[0], entry.get(5, [0])[0]
        kind, width = DTYPES[dtype]
        count = 1
        for dimension in shape:
            count *= dimension
        if count * width != size:
            raise ValueError(f"{prefix}: tensor {name} has {size} bytes for shape {shape}")
        path = f"{prefix}.data-{shard:05d}-of-{shards:05d}"
        if path not in files:
            files[path] = open(path, "rb")
        files[path].seek(offset)
        raw = files[path].read(size)
        if len(raw) != size:
            raise ValueError(f"{path}: truncated data for {name}")
        tensors[name] = (kind, shape, raw)
    for f in files.values():
        f.close()
    return tensors


def convert(prefix, target):
    write_safetensors(read_checkpoint(prefix), target)


if __name__ == "__main__":
    convert(sys.argv[1], sys.argv[2])
