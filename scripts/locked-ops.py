#!/usr/bin/env python3
"""Atomic read-modify-write instructions per request, from a callgrind profile.

Usage: scripts/locked-ops.py CALLGRIND_OUT BINARY REQUESTS [TOP]

callgrind counts instructions, not what they cost. A lock-prefixed instruction (an
atomic increment, a compare-and-swap, `xchg` with memory) stalls until the CPU's store
buffer drains: ~7 ns on the benchmark machine against a fraction of a nanosecond for an
ordinary instruction. This finds them: the profile must have been recorded with
`--dump-instr=yes --compress-pos=no --compress-strings=no` (scripts/callgrind.sh does
with CG_LOCKED=1), so that it holds a count per instruction address; `objdump -d` of
BINARY says which addresses are locked. Only BINARY's own code is counted (the
allocator and the runtime are linked into it; libc's locked instructions are not).
"""

import collections
import re
import subprocess
import sys


def executed(profile, binary):
    """Self counts per instruction address of `binary` (call lines excluded)."""
    counts = collections.Counter()
    obj = None
    after_call = False
    with open(profile) as lines:
        for line in lines:
            if line.startswith("ob="):
                obj = line[3:].strip()
            elif line.startswith("calls="):
                after_call = True  # the next cost line is the call's inclusive cost
            elif line.startswith("0x"):
                if after_call:
                    after_call = False
                elif obj == binary:
                    address, _line, cost = line.split()[:3]
                    counts[int(address, 16)] += int(cost)
    return counts


def locked(binary):
    """Address -> (function, mnemonic) of every locked instruction in `binary`."""
    found = {}
    function = None
    dump = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", "-C", binary],
        capture_output=True, text=True, check=True,
    ).stdout
    for line in dump.splitlines():
        if m := re.match(r"^[0-9a-f]+ <(.*)>:$", line):
            function = m.group(1)
        elif m := re.match(r"^\s+([0-9a-f]+):\s+(.*)$", line):
            text = m.group(2).split()
            if text and (text[0] == "lock" or (text[0].startswith("xchg") and "(" in m.group(2))):
                mnemonic = text[1] if text[0] == "lock" and len(text) > 1 else text[0]
                found[int(m.group(1), 16)] = (function, mnemonic)
    return found


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    profile, binary, requests = sys.argv[1], sys.argv[2], int(sys.argv[3])
    top = int(sys.argv[4]) if len(sys.argv) > 4 else 25
    counts = executed(profile, binary)
    sites = collections.Counter()
    for address, (function, mnemonic) in locked(binary).items():
        if counts[address]:
            sites[(function, mnemonic)] += counts[address]
    total = sum(sites.values())
    print(f"locked instructions per request: {total / requests:.1f}")
    for (function, mnemonic), n in sites.most_common(top):
        print(f"{n / requests:8.2f}  {mnemonic:8}  {function[:130]}")


if __name__ == "__main__":
    main()
