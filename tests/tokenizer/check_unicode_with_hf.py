#!/usr/bin/env python3
"""CTest check of include/cai/model/detail/unicode_tables.hpp against the regex engine of Hugging Face
tokenizers (Oniguruma): for every code point, \\p{L}, \\p{N} and \\s as HF matches them versus the committed
ranges. Passes when they agree everywhere (the committed Unicode 16.0 tables do with tokenizers 0.23), or,
when a unicodedata module of the tables' Unicode version is importable, when every difference is a code
point that version leaves unassigned (a newer or older engine). Prints the counts.
Exits 77 (CTest SKIP_RETURN_CODE) without `tokenizers`, or when the tables differ and no unicodedata of
their version is at hand to judge the differences."""
import re
import sys
from pathlib import Path

try:
    from tokenizers import Regex, pre_tokenizers
except ImportError:
    print("SKIP: the Python package 'tokenizers' is not installed (pip install tokenizers)")
    sys.exit(77)

header = (Path(__file__).resolve().parents[2] / "include/cai/model/detail/unicode_tables.hpp").read_text()
version = re.search(r'unicode_tables_version = "([^"]+)"', header).group(1)


def table(name):
    body = re.search(name + r"\[\] = \{(.*?)\};", header, re.S).group(1)
    out = set()
    for a, b in re.findall(r"\{0x([0-9A-F]+), 0x([0-9A-F]+)\}", body):
        out.update(range(int(a, 16), int(b, 16) + 1))
    return out


cps = [c for c in range(0x110000) if not (0xD800 <= c <= 0xDFFF)]
text = "".join(map(chr, cps))


def hf_class(pattern):
    keep = set()
    for _, (a, b) in pre_tokenizers.Split(Regex(pattern), "removed").pre_tokenize_str(text):
        keep.update(range(a, b))
    return {cps[i] for i in range(len(cps)) if i not in keep}


def unicodedata_of(wanted):
    for name in ("unicodedata", "unicodedata2"):
        try:
            module = __import__(name)
        except ImportError:
            continue
        if module.unidata_version == wanted:
            return module
    return None


diffs = {}
for pattern, name in [(r"\p{L}", "letter_ranges"), (r"\p{N}", "number_ranges"), (r"\s", "space_ranges")]:
    hf, ours = hf_class(pattern), table(name)
    diffs[pattern] = sorted(hf ^ ours)
    print(f"{pattern}: HF {len(hf)}, cai {len(ours)} code points; {len(diffs[pattern])} differ")
if not any(diffs.values()):
    print(f"the Unicode {version} tables agree with HF's regex engine on all {len(cps)} code points")
    sys.exit(0)
ud = unicodedata_of(version)
if ud is None:
    print(f"SKIP: the tables (Unicode {version}) differ from HF's engine and no unicodedata of that version is "
          f"importable to tell whether only unassigned code points differ (pip install unicodedata2=={version})")
    sys.exit(77)
failed = False
for pattern, diff in diffs.items():
    assigned = [c for c in diff if ud.category(chr(c)) != "Cn"]
    if assigned:
        failed = True
        print(f"{pattern}: {len(assigned)} code points assigned in Unicode {version} differ: {[hex(c) for c in assigned[:20]]}")
print("FAILED" if failed else f"all differences are code points unassigned in Unicode {version}")
sys.exit(1 if failed else 0)
