#!/usr/bin/env python3
"""NumPy reference for issue 7: match features, semantic-ID assignment and the fit's statistics.

Regenerates Tests/EmbeddingTests/Fixtures/semantic-ids/ (small, committed):
  codebook.safetensors  a codebook in OmniEmbed's format (rotation = a random orthogonal matrix, 3 residual
                        k-means levels of random centroids, an FSQ level of 4 x 3 x 2), written by this script's own
                        safetensors writer
  codes.json            vectors and their codes, assigned in float64 by brute force (nearest centroid on the
                        rotated residual, then FSQ), with each level's distance gap to the runner-up
  match.json            a history (with weights) and candidates with codes, and every match feature in float64
  stats.json            code tables with their collision rate and per-level utilisation, recounted by np.unique

Only NumPy is needed (any 1.x/2.x):
    python3 -m venv /tmp/np && /tmp/np/bin/pip install numpy && /tmp/np/bin/python scripts/reference/semantic_ids.py
The definitions here are the specification the Swift code is checked against:
  user vector  = normalise(sum_i w_i h_i over the last `recent` unit history rows)
  user_cos     = cos(candidate, user vector)
  max_cos      = max_i cos(candidate, h_i)
  topk_mean_cos= mean of the top_k largest cos(candidate, h_i)
  sim_top      = the sim_top history indices by decreasing cos (ties to the lower index), with their scores
  sid_match[l] = #history items whose codes[0..l] equal the candidate's codes[0..l]
"""
import json
import os
import struct

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests", "EmbeddingTests", "Fixtures", "semantic-ids")
rng = np.random.default_rng(7)
D = 48
LEVELS = [16, 12, 8]
FSQ = [4, 3, 2]


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def write_safetensors(path, tensors, metadata):
    header, offset, blobs = {"__metadata__": metadata}, 0, []
    for name, array in tensors:
        data = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


# --- codebook and assignment -------------------------------------------------------------------------------------
rotation = np.linalg.qr(rng.normal(size=(D, D)))[0].T.astype(np.float32)
centroids = [(rng.normal(size=(k, D)) * (0.5 ** level) / np.sqrt(D) * 3).astype(np.float32)
             for level, k in enumerate(LEVELS)]
projection = np.linalg.qr(rng.normal(size=(D, len(FSQ))))[0].T.astype(np.float32)
scale = np.array([0.05, 0.04, 0.03], dtype=np.float32)


def assign(vectors):
    """Codes and, per level, the gap between the nearest and the second-nearest centroid (float64)."""
    residual = vectors.astype(np.float64) @ rotation.astype(np.float64).T
    codes, gaps = [], []
    for c in centroids:
        d = ((residual[:, None, :] - c.astype(np.float64)[None]) ** 2).sum(-1)
        order = np.argsort(d, axis=1, kind="stable")
        best = order[:, 0]
        codes.append(best)
        gaps.append(d[np.arange(len(d)), order[:, 1]] - d[np.arange(len(d)), best])
        residual = residual - c.astype(np.float64)[best]
    z = np.tanh(residual @ projection.astype(np.float64).T / scale.astype(np.float64))
    position = (z + 1) / 2 * (np.array(FSQ) - 1)
    index = np.clip(np.rint(position), 0, np.array(FSQ) - 1).astype(int)
    code = np.zeros(len(vectors), dtype=int)
    radix = 1
    for i, q in enumerate(FSQ):
        code += index[:, i] * radix
        radix *= q
    codes.append(code)
    # Distance of each direction's position from a rounding boundary (x.5).
    gaps.append(np.abs(np.abs(position - np.floor(position)) - 0.5).min(axis=1))
    return np.stack(codes, 1), np.stack(gaps, 1)


def main():
    os.makedirs(OUT, exist_ok=True)
    tensors = [("rotation", rotation)] + [(f"level.{i}.centroids", c) for i, c in enumerate(centroids)]
    tensors += [("fsq.projection", projection), ("fsq.scale", scale)]
    write_safetensors(os.path.join(OUT, "codebook.safetensors"), tensors, {
        "format": "omniembed-codebook/1", "levels": str(len(LEVELS)), "clusters": ",".join(map(str, LEVELS)),
        "fsq_levels": ",".join(map(str, FSQ)), "model_id": "", "model_revision": ""})

    # Vectors near the codebook's cells, so every level and FSQ code is exercised.
    picks = [rng.integers(0, k, 200) for k in LEVELS]
    rotated = sum(centroids[l].astype(np.float64)[picks[l]] for l in range(len(LEVELS)))
    rotated += rng.normal(size=rotated.shape) * 0.03
    vectors = (rotated @ rotation.astype(np.float64)).astype(np.float32)
    codes, gaps = assign(vectors)
    json.dump({"dimensions": D, "code_counts": LEVELS + [int(np.prod(FSQ))], "vectors": vectors.tolist(),
               "codes": codes.tolist(), "gaps": gaps.tolist()},
              open(os.path.join(OUT, "codes.json"), "w"))

    # --- match features ------------------------------------------------------------------------------------------
    h, c, recent, top_k, sim_top = 37, 9, 10, 5, 7
    history = unit(rng.normal(size=(h, D))).astype(np.float32)
    candidates = unit(np.concatenate([history[[3, 30]] + 0.05 * rng.normal(size=(2, D)),
                                      rng.normal(size=(c - 2, D))])).astype(np.float32)
    weights = rng.uniform(0.1, 3.0, size=h).astype(np.float32)
    history_codes, _ = assign(history)
    candidate_codes, _ = assign(candidates)
    candidate_codes[0, :2] = history_codes[3, :2]   # shared prefixes, so sid_match is not all zeros
    candidate_codes[1, :] = history_codes[30, :]
    H, C = history.astype(np.float64), candidates.astype(np.float64)
    user = (weights[-recent:, None].astype(np.float64) * H[-recent:]).sum(0)
    user /= np.linalg.norm(user)
    scores = C @ H.T
    expected = []
    for i in range(c):
        order = np.argsort(-scores[i], kind="stable")
        sid = []
        for level in range(candidate_codes.shape[1]):
            sid.append(int((history_codes[:, :level + 1] == candidate_codes[i, :level + 1]).all(1).sum()))
        expected.append({"user_cos": float(C[i] @ user), "max_cos": float(scores[i].max()),
                         "topk_mean_cos": float(np.sort(scores[i])[::-1][:top_k].mean()),
                         "sim_top": [[int(j), float(scores[i, j])] for j in order[:sim_top]], "sid_match": sid})
    json.dump({"dimensions": D, "recent": recent, "top_k": top_k, "sim_top": sim_top,
               "history": history.tolist(), "weights": weights.tolist(), "candidates": candidates.tolist(),
               "history_codes": history_codes.tolist(), "candidate_codes": candidate_codes.tolist(),
               "code_counts": LEVELS + [int(np.prod(FSQ))], "expected": expected},
              open(os.path.join(OUT, "match.json"), "w"))

    # --- statistics ----------------------------------------------------------------------------------------------
    tables = []
    for n, k, length in [(500, 8, 2), (300, 40, 3), (50, 256, 3)]:
        table = rng.integers(0, k, size=(n, length))
        table[rng.integers(0, n, 10)] = table[0]   # some sure collisions
        _, inverse, counts = np.unique(table, axis=0, return_inverse=True, return_counts=True)
        tables.append({"codes": table.tolist(), "code_count": k,
                       "collision_rate": float((counts[inverse.ravel()] > 1).mean()),
                       "utilisation": [float(len(np.unique(table[:, l])) / k) for l in range(length)]})
    json.dump({"tables": tables}, open(os.path.join(OUT, "stats.json"), "w"))
    print("wrote", OUT)


if __name__ == "__main__":
    main()
