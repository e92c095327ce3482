"""Fuzz the pure decoders and validators on many mutated inputs; report any foreign exception.

The targets, seeds, insertion tokens and the rule of what may be raised are
those of ``tests/test_fuzz.py`` (imported from there, so the two cannot
drift): the frame decoder both ways, the config decoder, the SSML validator
and the callback receiver's body parser.  Instead of hypothesis, a seeded
``random.Random`` mutates the seeds (byte/char flips, truncation, deletion,
duplication, insertion and substitution of tokens: ``[``/``{`` runs past the
recursion limit, lone surrogates, invalid UTF-8, huge numbers, wrong JSON
types, markup), switches str/bytes, and now and then passes an argument of the
wrong type.  Inputs are spread evenly over the targets.

Prints one JSON line: inputs and rejections per target, inputs/s, and every
distinct foreign exception (type, target, message, a repr of the input
truncated); exits 1 if there was one.

    python benchmarks/fuzz.py [--count 1000000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, AnyStr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_fuzz import SEEDS, TARGETS, TOKENS, WRONG_TYPES, feed

WRONG_TYPE_RATE = 1 / 64  # share of inputs that are an argument of the wrong type
BOTH_KINDS = frozenset({"decode", "decode_client", "decode_config"})  # take str and bytes
REPR_LIMIT = 200
MAX_REPORTED = 20

# Pre-encoded tokens: the mutator runs once per input, so nothing is encoded there.
TOKENS_BYTES = tuple(token.encode("utf-8", "surrogatepass") for token in TOKENS)


def _flip_char(rng: random.Random, data: str, at: int) -> str:
    return chr(ord(data[at]) ^ rng.randint(1, 0xFFFF))  # it may become a surrogate


def _flip_byte(rng: random.Random, data: bytes, at: int) -> bytes:
    return bytes([data[at] ^ rng.randint(1, 255)])


def _mutate(
    rng: random.Random,
    data: AnyStr,
    tokens: Sequence[AnyStr],
    flip: Callable[[random.Random, AnyStr, int], AnyStr],
) -> AnyStr:
    for _ in range(rng.randint(1, 4)):
        size = len(data)
        at = rng.randint(0, size)
        op = rng.randrange(7)
        if op == 0 and size:  # flip one character or byte
            at = min(at, size - 1)
            data = data[:at] + flip(rng, data, at) + data[at + 1 :]
        elif op == 1:
            data = data[:at]
        elif op == 2:
            data = data[:at] + data[at + rng.randint(1, 64) :]
        elif op == 3:
            data = data[:at] + data[at : at + rng.randint(1, 64)] + data[at:]
        elif op == 4:
            data = data[:at] + rng.choice(tokens) + data[at + rng.randint(1, 8) :]
        else:
            data = data[:at] + rng.choice(tokens) + data[at:]
    return data


def mutate_str(rng: random.Random, data: str) -> str:
    return _mutate(rng, data, TOKENS, _flip_char)


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    return _mutate(rng, data, TOKENS_BYTES, _flip_byte)


def an_input(rng: random.Random, target: str, seeds: Sequence[str | bytes]) -> object:
    if rng.random() < WRONG_TYPE_RATE:
        return rng.choice(WRONG_TYPES)
    seed = rng.choice(seeds)
    if target in BOTH_KINDS and rng.random() < 0.5:
        seed = seed.decode("utf-8") if isinstance(seed, bytes) else seed.encode()
    return mutate_str(rng, seed) if isinstance(seed, str) else mutate_bytes(rng, seed)


def short(value: object) -> str:
    try:
        text = repr(value)
    except Exception:  # a 5000-digit int, say
        text = f"<{type(value).__name__}>"
    return text if len(text) <= REPR_LIMIT else text[: REPR_LIMIT - 3] + "..."


def run(count: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    names = sorted(TARGETS)
    stats = {name: {"inputs": 0, "rejected": 0, "seconds": 0.0} for name in names}
    foreign: dict[tuple[str, str, str], dict[str, Any]] = {}
    foreign_count = 0
    started = time.perf_counter()
    for i in range(count):
        target = names[i % len(names)]
        data = an_input(rng, target, SEEDS[target])
        t0 = time.perf_counter()
        try:
            rejected = feed(target, data) is not None
        except Exception as exc:  # the thing looked for: anything but avatarkit's own
            rejected = True
            foreign_count += 1
            message = str(exc)[:REPR_LIMIT]
            key = (type(exc).__name__, target, message[:80])
            if key not in foreign and len(foreign) < MAX_REPORTED:
                foreign[key] = {
                    "type": type(exc).__name__,
                    "target": target,
                    "message": message,
                    "input": short(data),
                }
        entry = stats[target]
        entry["seconds"] += time.perf_counter() - t0
        entry["inputs"] += 1
        entry["rejected"] += rejected
    elapsed = time.perf_counter() - started
    return {
        "benchmark": "fuzz",
        "count": count,
        "seed": seed,
        "seconds": round(elapsed, 1),
        "inputs_per_s": round(count / elapsed),
        "targets": {
            name: {
                "inputs": s["inputs"],
                "rejected": s["rejected"],
                "inputs_per_s": round(s["inputs"] / s["seconds"]) if s["seconds"] else None,
            }
            for name, s in stats.items()
        },
        "foreign_exceptions": foreign_count,
        "foreign": list(foreign.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="inputs in all")
    parser.add_argument("--seed", type=int, default=0, help="seed of the mutator")
    args = parser.parse_args()
    report = run(args.count, args.seed)
    print(json.dumps(report, ensure_ascii=True))
    sys.exit(1 if report["foreign_exceptions"] else 0)


if __name__ == "__main__":
    main()
