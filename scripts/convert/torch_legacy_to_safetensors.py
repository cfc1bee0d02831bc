"""Converts a legacy (pre-zip) PyTorch state dict (`torch.save(..., _use_new_zipfile_serialization=False)`) to
safetensors, with the standard library only and without running arbitrary pickled code.

The legacy file is five pickles in a row — magic number, protocol version, system info, the state dict (tensors as
persistent ids into storages), the list of storage keys — then each storage's raw bytes preceded by its element
count. The unpickler here resolves only the handful of globals a state dict needs, to inert stand-ins; any other
global (the way a malicious pickle runs code) is refused.

Usage: python3 torch_legacy_to_safetensors.py model.pth model.safetensors
"""
import array
import collections
import itertools
import json
import pickle
import struct
import sys

MAGIC = 0x1950A86A20F9469CFC6C
PROTOCOL = 1001
# storage class -> (safetensors dtype, bytes per element)
STORAGES = {
    "FloatStorage": ("F32", 4), "DoubleStorage": ("F64", 8), "HalfStorage": ("F16", 2),
    "BFloat16Storage": ("BF16", 2), "LongStorage": ("I64", 8), "IntStorage": ("I32", 4),
    "ShortStorage": ("I16", 2), "CharStorage": ("I8", 1), "ByteStorage": ("U8", 1), "BoolStorage": ("BOOL", 1),
}


class StorageType:
    def __init__(self, name):
        self.dtype, self.size = STORAGES[name]


class TensorRef:
    """A tensor as the pickle describes it: a view into a storage, materialised once the storages are read."""

    def __init__(self, storage, offset, shape, stride):
        self.storage, self.offset, self.shape, self.stride = storage, offset, tuple(shape), tuple(stride)


def rebuild_tensor(storage, offset, shape, stride, requires_grad=False, backward_hooks=None, metadata=None):
    return TensorRef(storage, offset, shape, stride)


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) in (("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor")):
            return rebuild_tensor
        if module == "torch" and name in STORAGES:
            return StorageType(name)
        raise pickle.UnpicklingError(f"refusing global {module}.{name}: not part of a plain state dict")

    def persistent_load(self, pid):
        # ('storage', storage type, key, location, element count[, view metadata])
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[1], StorageType)):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        if len(pid) > 5 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views are not supported")
        return {"type": pid[1], "key": str(pid[2]), "count": int(pid[4])}


def read_state_dict(path):
    with open(path, "rb") as f:
        def load():
            return RestrictedUnpickler(f).load()
        if load() != MAGIC:
            raise ValueError(f"{path}: not a legacy PyTorch file (bad magic number)")
        if load() != PROTOCOL:
            raise ValueError(f"{path}: unsupported protocol version")
        load()  # system info: endianness and type sizes
        state = load()
        keys = load()
        raw = {}
        for key in keys:
            count = struct.unpack("<q", f.read(8))[0]
            raw[str(key)] = (count, f.tell())
            # Element size comes from the tensors referring to the storage; skip by the largest we know of.
            element = next((t.storage["type"].size for t in state.values()
                            if isinstance(t, TensorRef) and t.storage["key"] == str(key)), None)
            if element is None:
                raise ValueError(f"{path}: storage {key} is not used by any tensor")
            f.seek(count * element, 1)
        tensors = collections.OrderedDict()
        for name, tensor in state.items():
            if not isinstance(tensor, TensorRef):
                raise ValueError(f"{path}: entry {name} is not a tensor")
            storage = tensor.storage
            count, position = raw[storage["key"]]
            size = storage["type"].size
            elements = 1
            for dimension in tensor.shape:
                elements *= dimension
            extent = sum((d - 1) * st for d, st in zip(tensor.shape, tensor.stride)) + 1 if elements else 0
            if tensor.offset + extent > count:
                raise ValueError(f"{path}: tensor {name} runs past its storage")
            f.seek(position + tensor.offset * size)
            data = f.read(extent * size)
            if len(data) != extent * size:
                raise ValueError(f"{path}: truncated data for {name}")
            data = contiguous(data, size, tensor.shape, tensor.stride)
            tensors[name] = (storage["type"].dtype, list(tensor.shape), data)
        return tensors


def contiguous(data, size, shape, stride):
    """The elements of a strided view (e.g. convolution weights kept in TensorFlow's HWIO order) in row-major order."""
    expected, step = [], 1
    for dimension in reversed(shape):
        expected.insert(0, step)
        step *= dimension
    if not shape or tuple(expected) == tuple(stride):
        return data
    code = {1: "B", 2: "H", 4: "I", 8: "Q"}[size]
    source = memoryview(data).cast(code)
    out = array.array(code)
    last, last_stride = shape[-1], stride[-1]
    for index in itertools.product(*(range(d) for d in shape[:-1])):
        base = sum(i * st for i, st in zip(index, stride))
        out.extend(source[base:base + (last - 1) * last_stride + 1:last_stride])
    return out.tobytes()


def write_safetensors(tensors, path):
    header, offset = {}, 0
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    with open(path + ".tmp", "wb") as out:
        out.write(struct.pack("<Q", len(encoded)) + encoded)
        for _, _, data in tensors.values():
            out.write(data)
    import os
    os.replace(path + ".tmp", path)


def convert(source, target, drop=lambda name: name.endswith("num_batches_tracked")):
    """Writes every tensor of `source` to `target` except those `drop` names (by default BatchNorm's training-step
    counters, integer scalars no inference uses)."""
    tensors = read_state_dict(source)
    write_safetensors(collections.OrderedDict((k, v) for k, v in tensors.items() if not drop(k)), target)


if __name__ == "__main__":
    convert(sys.argv[1], sys.argv[2])
