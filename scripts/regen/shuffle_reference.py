#!/usr/bin/env python3
"""Independent reference for chains/shuffle.cpp (the shuffled-order control): Fisher-Yates over a
SplitMix64 stream seeded with seed ^ (id * 0xD1B54A32D192ED03), uniform draws by rejection.
Prints the orders tests/unit/chains/shuffle_test.cpp expects. Usage: python3 scripts/regen/shuffle_reference.py"""
M = (1 << 64) - 1


def splitmix64(state):
    while True:
        state = (state + 0x9E3779B97F4A7C15) & M
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
        yield z ^ (z >> 31)


def below(stream, n):
    limit = M - (M % n)
    while True:
        x = next(stream)
        if x < limit:
            return x % n


def shuffle(items, seed, chain_id):
    stream = splitmix64(seed ^ ((chain_id * 0xD1B54A32D192ED03) & M))
    s = list(items)
    for i in range(len(s), 1, -1):
        j = below(stream, i)
        s[i - 1], s[j] = s[j], s[i - 1]
    return s


if __name__ == "__main__":
    assert next(splitmix64(0)) == 0xE220A8397B1DCDAF  # the published first output for state 0
    for seed, chain_id in [(7, 3), (7, 4), (8, 3)]:
        print(f"seed {seed}, id {chain_id}:", shuffle(list("abcde"), seed, chain_id))
