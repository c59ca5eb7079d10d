"""Exact and near duplicates, within the data and against an evaluation set, without holding the records.

Each example's text is normalised (lower case, whitespace collapsed). Exact duplicates share the
normalised text's 64-bit BLAKE2b digest. Near duplicates are found with MinHash and locality-sensitive
hashing (LSH) over word n-grams (the rubric's `shingle_words`, 5): a signature of `num_perm` minimum
hashes estimates the Jaccard similarity of two examples' n-gram sets as the share of equal positions.

The signatures are computed for a batch of records at once with numpy (one-permutation hashing: each
n-gram's hash picks one of `num_perm` buckets and the bucket keeps its minimum, empty buckets filled by
rotation from their neighbours, Shrivastava 2017), because a per-record library call (datasketch's
`MinHash.update`) costs more than the rest of the scan. The LSH banding is datasketch's: `bands` bands
of `num_perm / bands` rows; two examples sharing a band are candidates, and a candidate counts as a near
duplicate only when its estimated Jaccard similarity is at or above `threshold`.

Memory: per record 8 bytes of digest, 8 bytes per band and 4 per signature value (about 330 bytes with
64 values and 8 bands), nothing of its text. A record is compared with the earliest record sharing each of
its bands; counts are of records that duplicate an earlier one.
"""

from __future__ import annotations

import hashlib

import numpy as np

from .checks import DuplicateRules

_P = np.uint64(0x100000001B3)  # an odd multiplier for the polynomial hash of a word's bytes
_P_INV = np.uint64(pow(0x100000001B3, -1, 1 << 64))
_EMPTY = np.uint32(0xFFFFFFFF)
_MASK32 = np.uint64(0xFFFFFFFF)


def normalise(text: str) -> str:
    return " ".join(text.lower().split())


def digest(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads every input bit over the 64 output bits (uint64 arithmetic wraps)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


class Signer:
    """MinHash signatures and LSH band keys for batches of normalised texts."""

    def __init__(self, rules: DuplicateRules):
        self.k = rules.num_perm
        self.bits = self.k.bit_length() - 1
        if 1 << self.bits != self.k:
            raise ValueError("duplicates.num_perm must be a power of two")
        self.bands = rules.bands
        self.rows = self.k // self.bands
        self.words = rules.shingle_words
        self.threshold = rules.threshold
        rng = np.random.default_rng(20261202)
        self._gram = rng.integers(1, 1 << 63, size=self.words, dtype=np.uint64) | np.uint64(1)
        self._band = rng.integers(1, 1 << 63, size=self.rows, dtype=np.uint64) | np.uint64(1)
        self._powers = np.ones(1, dtype=np.uint64)
        self._inverse = np.ones(1, dtype=np.uint64)

    def _power_tables(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        if len(self._powers) < n + 1:
            size = max(n + 1, 2 * len(self._powers))
            with np.errstate(over="ignore"):
                powers, inverse = np.full(size, _P, dtype=np.uint64), np.full(size, _P_INV, dtype=np.uint64)
                powers[0] = inverse[0] = 1  # element i holds P**i (and P**-i), wrapping modulo 2**64
                self._powers = np.cumprod(powers, dtype=np.uint64)
                self._inverse = np.cumprod(inverse, dtype=np.uint64)
        return self._powers, self._inverse

    def sign(self, encoded: list[bytes], digests: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(signatures uint32 [n, num_perm], band keys uint64 [n, bands]) of normalised UTF-8 texts."""
        n = len(encoded)
        joined = np.frombuffer(b"\n".join(encoded) + b"\n", dtype=np.uint8)
        powers, inverse = self._power_tables(len(joined))
        sep = (joined == 32) | (joined == 10)
        prev_sep = np.concatenate([[True], sep[:-1]])
        next_sep = np.concatenate([sep[1:], [True]])
        starts = np.flatnonzero(~sep & prev_sep)
        ends = np.flatnonzero(~sep & next_sep)
        record_of = np.cumsum(joined == 10)[starts]  # newlines before each word = its record
        with np.errstate(over="ignore"):
            weighted = (joined.astype(np.uint64) + np.uint64(1)) * inverse[: len(joined)]
            prefix = np.concatenate([[np.uint64(0)], np.cumsum(weighted, dtype=np.uint64)])
            words = _mix((prefix[ends + 1] - prefix[starts]) * powers[ends])
            w = self.words
            if len(words) >= w:
                grams = words[: len(words) - w + 1] * self._gram[0]
                for i in range(1, w):
                    grams = grams + words[i : len(words) - w + 1 + i] * self._gram[i]
                gram_record = record_of[: len(words) - w + 1]
                whole = gram_record == record_of[w - 1 :]
                grams, gram_record = _mix(grams[whole]), gram_record[whole]
            else:
                grams, gram_record = np.empty(0, np.uint64), np.empty(0, np.int64)
            # Records with fewer words than an n-gram: their whole text is their one n-gram.
            counts = np.bincount(record_of, minlength=n)
            short = np.flatnonzero(counts < w)
            grams = np.concatenate([grams, _mix(digests[short].astype(np.uint64))])
            gram_record = np.concatenate([gram_record, short])
            bucket = (grams >> np.uint64(64 - self.bits)).astype(np.int64)
            values = (grams & _MASK32).astype(np.uint32)
            signatures = np.full(n * self.k, _EMPTY, dtype=np.uint32)
            np.minimum.at(signatures, gram_record.astype(np.int64) * self.k + bucket, values)
            signatures = _densify(signatures.reshape(n, self.k))
            keys = (signatures.reshape(n, self.bands, self.rows).astype(np.uint64) * self._band).sum(
                axis=2, dtype=np.uint64
            )
        return signatures, keys


def _densify(sig: np.ndarray) -> np.ndarray:
    """Empty buckets take the value of the next non-empty bucket (circularly), salted by the distance."""
    rows = np.flatnonzero((sig == _EMPTY).any(axis=1))
    if not len(rows):
        return sig
    part = sig[rows]
    filled = part.copy()
    k = sig.shape[1]
    for t in range(1, k):
        todo = filled == _EMPTY
        if not todo.any():
            break
        source = np.roll(part, -t, axis=1)
        take = todo & (source != _EMPTY)
        filled[take] = source[take] ^ np.uint32((t * 0x9E3779B1) & 0xFFFFFFFF)
    sig[rows] = filled
    return sig


class Store:
    """Digests, signatures and band keys of every record seen, in growing chunks."""

    def __init__(self):
        self.digests: list[np.ndarray] = []
        self.signatures: list[np.ndarray] = []
        self.keys: list[np.ndarray] = []

    def add(self, digests: np.ndarray, signatures: np.ndarray, keys: np.ndarray) -> None:
        self.digests.append(digests)
        self.signatures.append(signatures)
        self.keys.append(keys)

    def arrays(self, k: int, bands: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self.digests:
            return np.empty(0, np.uint64), np.empty((0, k), np.uint32), np.empty((0, bands), np.uint64)
        return np.concatenate(self.digests), np.concatenate(self.signatures), np.concatenate(self.keys)


def within(store: Store, signer: Signer) -> tuple[int, int]:
    """(exact, near): records whose text equals an earlier record's, and records (not exact) whose estimated
    Jaccard similarity with the earliest record sharing one of their bands is at or above the threshold."""
    digests, signatures, keys = store.arrays(signer.k, signer.bands)
    n = len(digests)
    if n == 0:
        return 0, 0
    _, first, inverse = np.unique(digests, return_index=True, return_inverse=True)
    exact = first[inverse] != np.arange(n)
    near = np.zeros(n, dtype=bool)
    for b in range(signer.bands):
        leader = _leaders(keys[:, b])
        candidates = np.flatnonzero(leader != np.arange(n))
        if len(candidates):
            similar = (signatures[candidates] == signatures[leader[candidates]]).mean(axis=1) >= signer.threshold
            near[candidates[similar]] = True
    return int(exact.sum()), int((near & ~exact).sum())


def _leaders(values: np.ndarray) -> np.ndarray:
    """For each position, the earliest position holding the same value."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    new_group = np.concatenate([[True], ordered[1:] != ordered[:-1]])
    group_first = order[np.flatnonzero(new_group)]
    leader = np.empty(len(values), dtype=np.int64)
    leader[order] = group_first[np.cumsum(new_group) - 1]
    return leader


class EvalIndex:
    """The evaluation set's digests, signatures and band keys, and which of its records the training data matches."""

    def __init__(self, store: Store, signer: Signer):
        self.signer = signer
        self.digests, self.signatures, keys = store.arrays(signer.k, signer.bands)
        self.size = len(self.digests)
        self.exact = np.zeros(self.size, dtype=bool)
        self.near = np.zeros(self.size, dtype=bool)
        self._digest_order = np.argsort(self.digests, kind="stable")
        self._key_orders = [np.argsort(keys[:, b], kind="stable") for b in range(signer.bands)]
        self._sorted_keys = [keys[order, b] for b, order in enumerate(self._key_orders)]

    def match(self, digests: np.ndarray, signatures: np.ndarray, keys: np.ndarray) -> None:
        """Mark the evaluation records that a batch of training records duplicates (exactly or nearly)."""
        if not self.size:
            return
        ordered = self.digests[self._digest_order]
        at = np.minimum(np.searchsorted(ordered, digests), self.size - 1)
        hit = ordered[at] == digests
        for i in np.flatnonzero(hit):  # every evaluation record with that text
            j = at[i]
            while j < self.size and ordered[j] == digests[i]:
                self.exact[self._digest_order[j]] = True
                j += 1
        for b in range(self.signer.bands):
            sorted_keys = self._sorted_keys[b]
            at = np.minimum(np.searchsorted(sorted_keys, keys[:, b]), self.size - 1)
            rows = np.flatnonzero(sorted_keys[at] == keys[:, b])
            if not len(rows):
                continue
            evals = self._key_orders[b][at[rows]]
            similar = (signatures[rows] == self.signatures[evals]).mean(axis=1) >= self.signer.threshold
            self.near[evals[similar]] = True

    def counts(self) -> tuple[int, int]:
        return int(self.exact.sum()), int((self.near & ~self.exact).sum())
